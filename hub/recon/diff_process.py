"""The comparison's join, in a process of its own: `python -m hub.recon.diff_process WORK MB THREADS`
with the SQL on standard input (`hub.recon.staging.diff_query`).

DuckDB's sqlite extension carries its own copy of SQLite. Two copies of SQLite in one process
release each other's POSIX locks on the same database file, which can corrupt it; so the hub's
process never loads the extension, and this one reads the store and writes only the work database.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hub.recon.staging import connect, load_sqlite_extension


def main(argv: list[str]) -> int:
    work, memory_mb, threads = Path(argv[0]), int(argv[1]), int(argv[2])
    db = connect(work, memory_mb, threads)
    try:
        load_sqlite_extension(db, work.parent.parent)
        db.execute(sys.stdin.read())
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
