"""The reconciliation file format: header, detail and trailer lines, written and read streaming.

    H|<sender kind.code>|<YYYYMMDD>|<DAILY or MONTHLY>|<record count>
    D|<fields...>
    T|<record count>

UTF-8, LF line ends (every line, the trailer too), `|`-separated, an empty field is empty. The
regular expressions below are RE2-compatible so that DuckDB checks a large file with the very
same rules (`hub.recon.staging`); `read_file` is the reference reader and names the first bad line.

The contract's scopes `DEBITS` and `CREDITS` (flow 4, 1.1) are settlement files this hub does not
reconcile yet (their `recon.file` is answered NOT_SUPPORTED); such a header is refused with a reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from hub.recon.area import create_new, open_folder

BANK_FIELDS = ("bank_agreement_no", "phone", "account_last4", "status", "user_type", "recharge_threshold",
               "recharge_amount", "auto_pay", "signed_at", "changed_at")  # fmt: skip
CRM_FIELDS = ("agreement_id", "phone", "bank_code", "status", "user_type", "recharge_threshold",
              "recharge_amount", "auto_pay", "changed_at")  # fmt: skip
ERROR_FIELDS = ("action", "agreement_id", "phone", "bank_code", "status", "user_type", "recharge_threshold",
                "recharge_amount", "auto_pay", "reason_code")  # fmt: skip

_ID = r"[\x20-\x2E\x30-\x7B\x7D\x7E]{1,64}"  # printable ASCII without | or /
_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
_FEN = r"(0|[1-9][0-9]{0,9})?"
FIELD_RULES: dict[str, tuple[str, str]] = {
    "bank_agreement_no": (_ID, "1-64 printable ASCII without | or /"),
    "agreement_id": (_ID, "1-64 printable ASCII without | or /"),
    "bank_code": (r"[A-Z0-9]{2,16}", "a bank code"),
    "phone": (r"1[0-9]{10}", "an 11-digit mobile number"),
    "account_last4": (r"[0-9]{4}", "4 digits"),
    "status": (r"ACTIVE|CANCELLED", "ACTIVE or CANCELLED"),
    "user_type": (r"PREPAID|POSTPAID", "PREPAID or POSTPAID"),
    "recharge_threshold": (_FEN, "empty or an amount in fen"),
    "recharge_amount": (_FEN, "empty or an amount in fen"),
    "auto_pay": (r"[YN]?", "Y, N or empty"),
    "signed_at": (_TIME, "an RFC 3339 time with an offset"),
    "changed_at": (_TIME, "an RFC 3339 time with an offset"),
    "action": (r"ADD|UPDATE|DELETE", "ADD, UPDATE or DELETE"),
    "reason_code": (r"MISSING_AT_CRM|UNKNOWN_AT_HUB|STATUS_MISMATCH|TERMS_MISMATCH", "a discrepancy class"),
}
_COMPILED = {name: re.compile(rx) for name, (rx, _) in FIELD_RULES.items()}
_TIME_FIELDS = frozenset({"signed_at", "changed_at"})


def record_regex(fields: Sequence[str]) -> str:
    """One RE2 pattern for a whole `D|...` line of these fields."""
    return r"D\|" + r"\|".join(f"(?:{FIELD_RULES[f][0]})" for f in fields)


class FileDefect(ValueError):
    """The file is refused whole; the message names the line and what is wrong with it, never the
    file's content (the reason goes back to the party, and a file is not always the party's own)."""


@dataclass(frozen=True, slots=True)
class Header:
    sender: str
    business_date: date
    scope: str
    record_count: int

    def line(self) -> str:
        return f"H|{self.sender}|{self.business_date:%Y%m%d}|{self.scope}|{self.record_count}\n"


def parse_header(line: str) -> Header:
    parts = line.split("|")
    if len(parts) != 5 or parts[0] != "H":
        raise FileDefect("line 1: the header must be H|sender|YYYYMMDD|scope|count")
    _, sender, day, scope, count = parts
    if not re.fullmatch(r"(bank|crm|hub)\.[A-Z0-9]{2,16}", sender):
        raise FileDefect("line 1: the sender is not bank.<CODE> or crm.<PROV>")
    try:
        business_date = datetime.strptime(day, "%Y%m%d").date() if re.fullmatch(r"\d{8}", day) else None
    except ValueError:
        business_date = None
    if business_date is None:
        raise FileDefect("line 1: the business date is not a date YYYYMMDD")
    if scope in ("DEBITS", "CREDITS"):
        raise FileDefect(f"line 1: scope {scope} (a flow 4 settlement file) is not reconciled here yet")
    if scope not in ("DAILY", "MONTHLY"):
        raise FileDefect("line 1: the scope is not DAILY or MONTHLY")
    if not re.fullmatch(r"0|[1-9][0-9]{0,9}", count):
        raise FileDefect("line 1: the record count is not a number")
    return Header(sender, business_date, scope, int(count))


def parse_trailer(line: str, number: int) -> int:
    match = re.fullmatch(r"T\|(0|[1-9][0-9]{0,9})", line)
    if match is None:
        raise FileDefect(f"line {number}: the trailer must be T|<record count>")
    return int(match.group(1))


def parse_record(line: str, number: int, fields: Sequence[str]) -> tuple[str, ...]:
    """The record's fields, or FileDefect naming the line and the first bad field."""
    parts = line.split("|")
    if parts[0] != "D":
        raise FileDefect(f"line {number}: expected a D record")
    if len(parts) != len(fields) + 1:
        raise FileDefect(f"line {number}: {len(parts) - 1} fields, a record has {len(fields)}")
    for name, value in zip(fields, parts[1:], strict=True):
        if _COMPILED[name].fullmatch(value) is None:
            raise FileDefect(f"line {number}: {name} is not {FIELD_RULES[name][1]}")
        if name in _TIME_FIELDS:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise FileDefect(f"line {number}: {name} is not a valid time") from None
    return tuple(parts[1:])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_file(path: Path, fields: Sequence[str]) -> Iterator[Header | tuple[str, ...]]:
    """Streams the header, then each record; checks every line, the count and the trailer.

    Raises FileDefect at the first defect, so a caller that must refuse a file whole reads it to
    the end before acting on any record."""
    with path.open("rb") as f:
        header: Header | None = None
        count = 0
        last: tuple[int, str] | None = None
        for number, raw in enumerate(f, start=1):
            line = _decode_line(raw, number)
            if last is not None:  # the previous line was not the last: it must be a record
                yield parse_record(last[1], last[0], fields)
                count += 1
            if header is None:
                header = parse_header(line)
                yield header
                continue
            last = (number, line)
        if header is None:
            raise FileDefect("line 1: the file is empty")
        if last is None:
            raise FileDefect("line 2: the trailer is missing")
        _check_counts(header, count, parse_trailer(last[1], last[0]), last[0])


def _decode_line(raw: bytes, number: int) -> str:
    if not raw.endswith(b"\n"):
        raise FileDefect(f"line {number}: does not end with LF")
    if raw.endswith(b"\r\n"):
        raise FileDefect(f"line {number}: ends with CR LF; lines end with LF")
    try:
        return raw[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise FileDefect(f"line {number}: not UTF-8") from None


def _check_counts(header: Header, records: int, trailer: int, trailer_line: int) -> None:
    if trailer != records:
        raise FileDefect(f"line {trailer_line}: the trailer says {trailer} records, the file has {records}")
    if header.record_count != records:
        raise FileDefect(f"line 1: the header says {header.record_count} records, the file has {records}")


def fmt_fen(value: int | None) -> str:
    return "" if value is None else str(value)


def fmt_flag(value: bool | None) -> str:
    return "" if value is None else ("Y" if value else "N")


class FileWriter:
    """Writes a file streaming: the header (count given up front), records, then the trailer.

    Written under a temporary name and renamed when complete, so a reader never sees half a file;
    `sha256` is known when the block ends. A count that does not match raises. The folders from
    `within` (default: the file's own folder) down to the file are made as needed and none is
    followed if it is a link, nor is the file's temporary or final name (`hub.recon.area`)."""

    def __init__(self, path: Path, header: Header, *, within: Path | None = None) -> None:
        self.path = path
        self.header = header
        self.sha256 = ""
        self._within = path.parent if within is None else within
        self._tmp = path.name + ".part"
        self._digest = hashlib.sha256()
        self._count = 0
        self._f: IO[bytes] | None = None
        self._folder = -1

    def __enter__(self) -> Self:
        folders = self.path.parent.relative_to(self._within).parts
        self._folder = open_folder(self._within, folders, create=True)
        try:
            self._f = os.fdopen(create_new(self._folder, self._tmp), "wb")
        except BaseException:
            os.close(self._folder)
            raise
        self._put(self.header.line())
        return self

    def write(self, fields: Iterable[str]) -> None:
        self._put("D|" + "|".join(fields) + "\n")
        self._count += 1

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self._digest.update(data)
        assert self._f is not None
        self._f.write(data)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        assert self._f is not None
        if exc is None and self._count != self.header.record_count:
            exc = ValueError(f"wrote {self._count} records, the header says {self.header.record_count}")
        if exc is None:
            self._put(f"T|{self._count}\n")
        self._f.close()
        try:
            if exc is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tmp, dir_fd=self._folder)
                if exc_type is None:
                    raise exc
                return
            os.replace(self._tmp, self.path.name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
        finally:
            os.close(self._folder)
        self.sha256 = self._digest.hexdigest()
