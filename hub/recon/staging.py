"""Checking a party's file and comparing it with the hub's export, at the scale of a large bank.

Synchronous, for a worker thread (`asyncio.to_thread`): the event loop never runs this. A byte
pass checks the sha256, the line ends, the header, the trailer and the line count; DuckDB then,
in a process of its own, checks every record against the same rules as `hub.recon.files` and
full-outer-joins the file with the hub's agreements (read from the SQLite store), keeping only the
pairs that differ. Memory is bounded by DuckDB's limit (it spills to the work directory), never by
the file's size. A defect found by DuckDB is located by the line-by-line reader, which names the line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from hub.recon.area import LinkOrNotAFile, open_party_file
from hub.recon.files import (
    BANK_FIELDS,
    CRM_FIELDS,
    FileDefect,
    Header,
    parse_header,
    parse_trailer,
    read_file,
    record_regex,
)
from hub.store.rows import ts


@dataclass(frozen=True, slots=True)
class Announced:
    """What the party's `recon.file` said about its file."""

    sender: str
    business_date: date
    scope: str
    record_count: int
    sha256: str


class Inbound:
    """A party's file in `<files>/inbound/<party>/`, opened once without following links
    (`hub.recon.area`); FileDefect when there is no such file of the folder itself.

    `path` names the opened file (`/proc/self/fd/N`, Linux): opened again, here or in the
    comparison's process (given `fd`), it is the same file even if its name changes meanwhile."""

    def __init__(self, files: Path, party: str, name: str) -> None:
        try:
            self.fd = open_party_file(files, party, name)
        except FileNotFoundError:
            raise FileDefect(f"line 1: no file {name} in the party's inbound folder") from None
        except LinkOrNotAFile as exc:
            raise FileDefect(f"line 1: {exc}") from None

    @property
    def path(self) -> Path:
        return Path(f"/proc/self/fd/{self.fd}")

    def __enter__(self) -> Inbound:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def check_bytes(path: Path, announced: Announced) -> Header:
    """The sha256, LF line ends, no empty line, header and trailer, and the number of lines."""
    if not path.is_file():
        raise FileDefect(f"line 1: no file {path.name} in the party's inbound folder")
    digest, lines, first, last = _scan(path)
    if digest != announced.sha256:
        raise FileDefect("line 1: the file's sha256 is not the one announced")
    header = parse_header(first)
    if header.sender != announced.sender:
        raise FileDefect(f"line 1: the header names {header.sender}, the file came from {announced.sender}")
    if (header.business_date, header.scope) != (announced.business_date, announced.scope):
        raise FileDefect(f"line 1: the header says {header.business_date} {header.scope}, the announcement "
                         f"{announced.business_date} {announced.scope}")  # fmt: skip
    if lines < 2:
        raise FileDefect("line 2: the trailer is missing")
    trailer = parse_trailer(last, lines)
    if trailer != lines - 2:
        raise FileDefect(f"line {lines}: the trailer says {trailer} records, the file has {lines - 2}")
    if header.record_count != lines - 2:
        raise FileDefect(f"line 1: the header says {header.record_count} records, the file has {lines - 2}")
    if announced.record_count != lines - 2:
        raise FileDefect(f"line 1: the announcement says {announced.record_count} records, the file has "
                         f"{lines - 2}")  # fmt: skip
    return header


def _scan(path: Path) -> tuple[str, int, str, str]:
    """sha256, number of lines, first and last line; raises at a CR, an empty line or no final LF."""
    digest = hashlib.sha256()
    lines, tail, first = 0, b"\n", b""  # as if a line ended just before the file: an empty line 1 shows
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
            joined = tail[-1:] + chunk
            base = lines - 1 if tail.endswith(b"\n") else lines  # newlines before `joined`
            _no_stray_bytes(joined, base)
            if not first:
                first = chunk.split(b"\n", 1)[0]
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-4096:]
    if not first and lines == 0:
        raise FileDefect("line 1: the file is empty")
    if not tail.endswith(b"\n"):
        raise FileDefect(f"line {lines + 1}: does not end with LF")
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        return digest.hexdigest(), lines, first.decode("utf-8"), last.decode("utf-8")
    except UnicodeDecodeError:
        raise FileDefect("line 1: the header or the trailer is not UTF-8") from None


def _no_stray_bytes(joined: bytes, base: int) -> None:
    newline = b"\n"
    cr = joined.find(b"\r")
    if cr >= 0:
        raise FileDefect(f"line {base + joined[:cr].count(newline) + 1}: a CR; lines end with LF alone")
    empty = joined.find(b"\n\n")
    if empty >= 0:
        raise FileDefect(f"line {base + joined[: empty + 1].count(newline) + 1}: an empty line")


@dataclass(frozen=True, slots=True)
class Compared:
    """What a comparison found, and how long its two passes took (seconds)."""

    pairs: int
    check_s: float
    join_s: float


@dataclass(frozen=True, slots=True)
class _Kind:
    fields: tuple[str, ...]
    key: str  # the hub's column the file's first field matches
    time_fields: tuple[int, ...]  # 1-based positions (after D) of times
    columns: str  # the file's typed columns, from s = string_split(line, '|')
    differs: str  # SQL: both sides present and different


_BANK = _Kind(
    BANK_FIELDS, "bank_agreement_no", (9, 10),
    "s[2] AS k, s[3] AS f_phone, s[4] AS f_last4, s[5] AS f_status, s[6] AS f_user_type,"
    " nullif(s[7], '') AS f_thr, nullif(s[8], '') AS f_amt, s[9] = 'Y' AS f_auto_pay, s[10] AS f_signed_at,"
    " s[11] AS f_changed_at",
    "f_status <> h_status OR f_user_type <> h_user_type OR f_thr IS DISTINCT FROM h_recharge_threshold"
    " OR f_amt IS DISTINCT FROM h_recharge_amount OR f_auto_pay <> h_auto_pay",
)  # fmt: skip
_CRM = _Kind(
    CRM_FIELDS, "agreement_id", (9,),
    "s[2] AS k, s[3] AS f_phone, s[4] AS f_bank_code, s[5] AS f_status, s[6] AS f_user_type,"
    " nullif(s[7], '') AS f_thr, nullif(s[8], '') AS f_amt, s[9] = 'Y' AS f_auto_pay, s[10] AS f_changed_at",
    "f_status <> h_status OR f_user_type <> h_user_type OR f_thr IS DISTINCT FROM h_recharge_threshold"
    " OR f_amt IS DISTINCT FROM h_recharge_amount OR f_auto_pay <> h_auto_pay OR f_bank_code <> h_bank"
    " OR f_phone <> h_phone",
)  # fmt: skip
KINDS = {"bank": _BANK, "crm": _CRM}


def _read_lines(path: str) -> str:
    return (f"read_csv('{_q(path)}', columns={{'line': 'VARCHAR'}}, header=false, delim='\\0', quote='',"
            " escape='', skip=1, auto_detect=false, new_line='\\n')")  # fmt: skip


READER_MB = 64  # the hub's own connection reads pages of the comparison, nothing large


def _q(text: str) -> str:
    return text.replace("'", "''")


class Comparison:
    """One file against the hub's export, in a DuckDB database of its own under `work`."""

    def __init__(self, work: Path, *, memory_mb: int = 512, threads: int = 2) -> None:
        work.parent.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.memory_mb, self.threads = memory_mb, threads
        self.db = connect(work, READER_MB, 1)  # pages of the comparison, and the held records

    def has_diff(self) -> bool:
        return bool(self.db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name='diff'").fetchone()[0])  # type: ignore[index]  # fmt: skip

    def compare(self, kind: str, path: Path, store: str, code: str, start: datetime, end: datetime, daily: bool,
                held_lines: Sequence[str] = (), held_keys: Sequence[str] = (),
                keep_fds: Sequence[int] = ()) -> Compared:  # fmt: skip
        """Checks every record (well-formed, every key once: else the line reader names the first
        bad line, `FileDefect`), then creates table `diff` (n, the file's record, the hub's record)
        of the pairs that differ.

        Both run in a process of its own (`hub.recon.diff_process`), so that DuckDB's memory is
        never the hub's. The hub's side is read straight from the SQLite store by DuckDB's sqlite
        extension (WAL readers never block the hub's writer). An agreement changed after the
        cut-off is kept whenever it might differ, for the caller to roll it back to the cut-off
        (`hub.store.recon_export.as_of`). `keep_fds` are passed to that process (`Inbound.fd`).
        """
        self.db.execute("CREATE OR REPLACE TABLE held_b (line VARCHAR)")
        self.db.execute("CREATE OR REPLACE TABLE held_h (k VARCHAR)")
        if held_lines:
            self.db.executemany("INSERT INTO held_b VALUES (?)", [(line,) for line in held_lines])
        if held_keys:
            self.db.executemany("INSERT INTO held_h VALUES (?)", [(key,) for key in held_keys])
        script = {"check": check_query(kind, path),
                  "diff": diff_query(kind, path, store, code, start, end, daily, bool(held_lines))}  # fmt: skip
        # The join reads the SQLite store with DuckDB's own copy of SQLite: never in the hub's
        # process, where two copies of SQLite would release each other's POSIX locks (sqlite.org,
        # "How To Corrupt An SQLite Database File", 2.2.1). The child has the work database alone.
        self.db.close()
        try:
            done = subprocess.run([sys.executable, "-m", "hub.recon.diff_process", str(self.work), str(self.memory_mb),
                                   str(self.threads)], input=json.dumps(script), capture_output=True, text=True,
                                  check=False, pass_fds=tuple(keep_fds))  # fmt: skip
        finally:
            self.db = connect(self.work, READER_MB, 1)
        if done.returncode != 0:
            raise RuntimeError(f"the comparison failed: {done.stderr[-2000:]}")
        report = json.loads(done.stdout.splitlines()[-1])
        if not report["records_ok"]:
            _locate(path, KINDS[kind].fields)
        row = self.db.execute("SELECT count(*) FROM diff").fetchone()
        assert row is not None
        return Compared(int(row[0]), report["check_s"], report["join_s"])

    def rows(self, after: int, size: int) -> list[dict[str, Any]]:
        """Differing pairs n > after, in order, at most `size`.

        `n` numbers the pairs 1, 2, ... and the table is stored in its order, so the range is found
        from DuckDB's per-block min/max without a scan of the whole table (which, once per page,
        made a large file's corrections quadratic). The bounds are integers, written into the SQL:
        a bound parameter would not be pushed down into the scan."""
        first, last = int(after), int(after) + int(size)
        cur = self.db.execute(f"SELECT * FROM diff WHERE n > {first} AND n <= {last} ORDER BY n")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def close(self, *, remove: bool = False) -> None:
        self.db.close()
        if remove:
            self.work.unlink(missing_ok=True)
            Path(str(self.work) + ".wal").unlink(missing_ok=True)


def check_query(kind: str, path: Path) -> str:
    """One row: records not well-formed (the trailer counts as one), records, distinct keys."""
    spec = KINDS[kind]
    rx = record_regex(spec.fields).replace("'", "''")
    times = " AND ".join(f"TRY_CAST(split_part(line, '|', {i + 1}) AS TIMESTAMPTZ) IS NOT NULL"
                         for i in spec.time_fields)  # fmt: skip
    return (f"SELECT count(*) FILTER (WHERE NOT (regexp_full_match(line, '{rx}') AND {times})),"
            " count(*) FILTER (WHERE line LIKE 'D|%'),"
            " count(DISTINCT split_part(line, '|', 2)) FILTER (WHERE line LIKE 'D|%')"
            f" FROM {_read_lines(str(path))}")  # fmt: skip


def diff_query(kind: str, path: Path, store: str, code: str, start: datetime, end: datetime, daily: bool,
               held: bool) -> str:  # fmt: skip
    """The SQL that creates table `diff` (see `Comparison.diff`), stored in the order of `n`; tables
    held_b and held_h exist."""
    spec = KINDS[kind]
    today_first = "QUALIFY row_number() OVER (PARTITION BY k ORDER BY f_second) = 1" if held else ""
    key = f"h_{spec.key}"
    live = "h_status IN ('ACTIVE', 'CANCELLED')"
    later = f"h_changed_at >= '{ts(end)}'"
    day = f"(h_changed_at >= '{ts(start)}' AND h_changed_at < '{ts(end)}')"
    # A cancelled agreement the party never had: nothing to correct in a MONTHLY file.
    hub_only = f"{live} AND ({day} OR h_second OR {later})" if daily else f"(h_status = 'ACTIVE' OR {later})"
    file_only = "f_status = 'ACTIVE'" if kind == "crm" else "true"
    owner = "bank" if kind == "bank" else "province"
    return f"""
        CREATE OR REPLACE TABLE pairs AS
        WITH f AS (SELECT line, false AS second FROM {_read_lines(str(path))}
                   UNION ALL SELECT line, true FROM held_b),
        b AS (SELECT second AS f_second, {spec.columns}
              FROM (SELECT second, string_split(line, '|') AS s FROM f WHERE line NOT LIKE 'T|%')
              {today_first}),
        h AS (SELECT agreement_id AS h_agreement_id, bank AS h_bank, bank_agreement_no AS h_bank_agreement_no,
                     phone AS h_phone, province AS h_province, status AS h_status,
                     CAST(version AS VARCHAR) AS h_version, user_type AS h_user_type,
                     CAST(recharge_threshold AS VARCHAR) AS h_recharge_threshold,
                     CAST(recharge_amount AS VARCHAR) AS h_recharge_amount, auto_pay = 1 AS h_auto_pay,
                     signed_at AS h_signed_at, updated_at AS h_changed_at,
                     {spec.key} IN (SELECT k FROM held_h) AS h_second
              FROM sqlite_scan('{_q(store)}', 'agreements') WHERE {owner} = '{_q(code)}')
        SELECT row_number() OVER (ORDER BY coalesce(b.k, {key})) AS n, b.*, h.*
        FROM b FULL OUTER JOIN h ON b.k = {key}
        WHERE (b.k IS NULL AND {hub_only}) OR ({key} IS NULL AND {file_only})
           OR (b.k IS NOT NULL AND {key} IS NOT NULL AND ({later} OR {live} AND ({spec.differs})));
        SET preserve_insertion_order=true;
        CREATE OR REPLACE TABLE diff AS SELECT * FROM pairs ORDER BY n;
        DROP TABLE pairs;
    """  # fmt: skip


def connect(work: Path, memory_mb: int, threads: int) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect(str(work))
    db.execute(f"SET memory_limit='{memory_mb}MB'")
    db.execute(f"SET threads={threads}")
    db.execute(f"SET temp_directory='{_q(str(work.parent / (work.name + '.tmp')))}'")
    db.execute("SET preserve_insertion_order=false")
    db.execute("SET enable_progress_bar=false")  # it would write to the hub's stdout
    return db


def load_sqlite_extension(db: duckdb.DuckDBPyConnection, cache: Path) -> None:
    """DuckDB's sqlite extension from its PyPI package (`duckdb-extension-sqlite`, signed by DuckDB,
    same version as duckdb); DuckDB wants the file under the extension's own name."""
    import duckdb_extension_sqlite  # type: ignore[import-untyped]

    source = Path(duckdb_extension_sqlite.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    target = cache / "sqlite_scanner.duckdb_extension"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "sqlite.duckdb_extension", target.with_suffix(".part"))
        target.with_suffix(".part").replace(target)
    db.execute(f"LOAD '{_q(str(target))}'")


def _locate(path: Path, fields: Sequence[str]) -> None:
    """Reads the file line by line to name its first defect (only for a file being refused)."""
    seen: dict[str, int] = {}
    for number, item in enumerate(read_file(path, fields), start=1):
        if isinstance(item, tuple):
            if item[0] in seen:
                raise FileDefect(f"line {number}: {fields[0]} appears twice (first on line {seen[item[0]]})")
            seen[item[0]] = number
    raise FileDefect("a record is not well-formed")
