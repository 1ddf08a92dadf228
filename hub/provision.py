"""`signhub provision`: one broker user per party, with the least rights, through `rabbitmqctl`.

A party's user `<prefix>.<kind>.<code>` may not configure anything, may write only to the inbound
exchange and there only routing keys that start with its own `<kind>.<code>.` (topic
permissions), and may read only its own party queue. With SIGNHUB_REQUIRE_USER_ID the hub also
refuses any message whose AMQP `user_id` is not that user; the broker checks that `user_id` is
the connection's own user.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts.routing import Party
from contracts.topology import Names

Ctl = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


@dataclass(frozen=True, slots=True)
class Grant:
    """What one party's broker user may do."""

    party: Party
    user: str
    configure: str
    write: str
    read: str
    topic_exchange: str
    topic_write: str


def grant_for(names: Names, party: Party) -> Grant:
    return Grant(
        party=party,
        user=f"{names.prefix}.{party}",
        configure="^$",
        write=f"^{re.escape(names.inbound_exchange)}$",
        read=f"^{re.escape(names.party_queue(party))}$",
        topic_exchange=names.inbound_exchange,
        topic_write=f"^{re.escape(str(party))}\\.",
    )


def rabbitmqctl(binary: str = "rabbitmqctl") -> Ctl:
    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)

    return run


def provision(
    ctl: Ctl, grants: list[Grant], *, vhost: str = "/", rotate: bool = False
) -> list[tuple[str, str, str]]:
    """Creates (or updates) each user and its rights; returns (party, user, password or note)."""
    existing = set(_users(ctl))
    out = []
    for g in grants:
        # Hex: a password starting with "-" would be read by rabbitmqctl as an option.
        password = secrets.token_hex(18)
        if g.user not in existing:
            _ok(ctl(["add_user", g.user, password]), g.user)
            note = password
        elif rotate:
            _ok(ctl(["change_password", g.user, password]), g.user)
            note = password
        else:
            note = "(exists; password unchanged)"
        _ok(ctl(["set_permissions", "-p", vhost, g.user, g.configure, g.write, g.read]), g.user)
        _ok(
            ctl(["set_topic_permissions", "-p", vhost, g.user, g.topic_exchange, g.topic_write, "^$"]), g.user
        )
        out.append((str(g.party), g.user, note))
    return out


def remove(ctl: Ctl, grants: list[Grant]) -> None:
    existing = set(_users(ctl))
    for g in grants:
        if g.user in existing:
            _ok(ctl(["delete_user", g.user]), g.user)


def write_credentials(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """The passwords, readable by the operator only, to hand to each party."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["party", "user", "password"])
        writer.writerows(rows)


def _users(ctl: Ctl) -> list[str]:
    listed = ctl(["list_users", "-q", "--no-table-headers"])
    _ok(listed, "list_users")
    return [line.split("\t")[0].strip() for line in listed.stdout.splitlines() if line.strip()]


def _ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl failed for {what}: {result.stderr.strip() or result.stdout.strip()}")
