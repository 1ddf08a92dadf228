"""The comparison's two passes, in a process of its own: `python -m hub.recon.diff_process WORK MB
THREADS` with a JSON object on standard input: `check` (`hub.recon.staging.check_query`) and
`diff` (`hub.recon.staging.diff_query`). Prints one JSON line: whether every record is well-formed
with its key once (`records_ok`; the join runs only then) and the seconds of each pass.

DuckDB's sqlite extension carries its own copy of SQLite. Two copies of SQLite in one process
release each other's POSIX locks on the same database file, which can corrupt it; so the hub's
process never loads the extension, and this one reads the store and writes only the work database.
Running the check here as well keeps DuckDB's memory out of the hub's process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

from hub.recon.staging import connect, load_sqlite_extension


def main(argv: list[str]) -> int:
    work, memory_mb, threads = Path(argv[0]), int(argv[1]), int(argv[2])
    script = json.loads(sys.stdin.read())
    db = connect(work, memory_mb, threads)
    report = {"records_ok": False, "check_s": 0.0, "join_s": 0.0}
    try:
        started = time.perf_counter()
        report["records_ok"] = _records_ok(db, script["check"])
        report["check_s"] = time.perf_counter() - started
        if report["records_ok"]:
            started = time.perf_counter()
            load_sqlite_extension(db, work.parent.parent)
            db.execute(script["diff"])
            report["join_s"] = time.perf_counter() - started
    finally:
        db.close()
    print(json.dumps(report))
    return 0


def _records_ok(db: duckdb.DuckDBPyConnection, check: str) -> bool:
    try:
        row = db.execute(check).fetchone()
    except duckdb.Error:  # e.g. a byte sequence that is not UTF-8: the line reader names it
        return False
    assert row is not None
    bad, total, keys = row
    return bool(bad == 1 and keys == total)  # the trailer is the one line that is not a record


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
