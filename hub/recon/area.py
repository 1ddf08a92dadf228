"""The file area as the hub touches it: a party's file read, and the hub's own written, without
following a link out of the party's folder.

Parties write to their folders (in production an SFTP or object-store mount). A symbolic link
there, at a file's name or at the folder's own, must not make the hub read a file elsewhere (and
echo it to the party) or overwrite one. So every name below the area's root (`inbound`, the
party's folder, the file) is opened relative to its parent's descriptor with `O_NOFOLLOW`: the
file reached is in the party's folder itself, whatever the names point to. Only the root, the
operator's `SIGNHUB_FILES`, may be a link (a mount point often is). A file read must be a regular
file; one written is created new (`O_EXCL`) and renamed into place, so a link at its temporary or
its final name is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_LINKS = (errno.ELOOP, errno.EMLINK)  # what O_NOFOLLOW says of a link (Linux, BSD)


def open_folder(root: Path, names: Sequence[str], *, create: bool = False) -> int:
    """A descriptor of `root/names...`, no name a link; folders made when `create`."""
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, _DIR)
    try:
        for name in names:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=fd)
            child = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_new(folder: int, name: str, mode: int = 0o666) -> int:
    """A new, empty file `name` in `folder`, open for writing; whatever had the name (a file
    left by a crash, a link) is removed first, never followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, mode, dir_fd=folder)
    except FileExistsError:
        os.unlink(name, dir_fd=folder)
        return os.open(name, flags, mode, dir_fd=folder)


class LinkOrNotAFile(OSError):
    """A name on the way is a link, or the name is not a regular file: the hub does not read it."""


def open_party_file(files: Path, party: str, name: str) -> int:
    """A descriptor of the regular file `<files>/inbound/<party>/<name>`, read-only, no name a link.

    FileNotFoundError when there is none; LinkOrNotAFile when it is not a file of the folder itself."""
    try:
        folder = open_folder(files, ("inbound", party))
    except OSError as exc:
        raise _translated(exc, "the party's inbound folder") from None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError as exc:
        raise _translated(exc, name) from None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LinkOrNotAFile(f"{name} is not a regular file")
    return fd


def _translated(exc: OSError, what: str) -> OSError:
    # O_NOFOLLOW on a link is ELOOP; with O_DIRECTORY, Linux says ENOTDIR first.
    if exc.errno in _LINKS:
        return LinkOrNotAFile(f"{what} is a link; the hub follows none in the file area")
    if exc.errno == errno.ENOTDIR:
        return LinkOrNotAFile(f"{what} is a link or not a folder; the hub follows no link in the file area")
    return exc
