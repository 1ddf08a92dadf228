"""WAL checkpoints for the SQLite store, scheduled so that no statement on the event loop and no
commit ever waits for one (automatic checkpoints are off: `PRAGMA wal_autocheckpoint=0`).

Two steps. At most every CHECKPOINT_EVERY_S, after a commit, a PASSIVE checkpoint runs on its own
connection and thread and copies the WAL into the database file without the store's lock: inside a
commit, that copy held every group behind it. Writers go on meanwhile, so it never catches up with
them, and SQLite starts the WAL over only after a checkpoint that did; so the next unit of work
first finishes it under the lock (only what was written meanwhile is left to copy), and the WAL is
reused from its start. No new checkpoint starts before that step has run: one running beside it
made it give up (busy), and the WAL then went on growing (tests/integration/test_store.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hub.store.sqlite_db import SqliteDb

log = logging.getLogger("signhub.store")
# Often, so that what the final step copies under the lock stays small. At 123 flows/s, in runs of
# 6,000 flows, every 5 s gave a per-hop p99 of 24-32 ms and every 0.25 s 19 ms; runs of 10,000
# flows gave 22-23 ms (every 1 s) and 24-26 ms (every 0.25 s), within the spread between runs.
CHECKPOINT_EVERY_S = 0.25


class Checkpoints:
    """The checkpoint schedule of one store file."""

    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None  # a second one to the file (none in memory)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signhub-checkpoint")
        self._started = time.monotonic()
        self._running = False
        self.to_finish = False  # a checkpoint beside the writers is done: finish it under the lock

    def after_commit(self) -> None:
        """Starts a checkpoint beside the writers when one is due and none is on its way."""
        now = time.monotonic()
        if (self.connection is None or self._running or self.to_finish
                or now - self._started < CHECKPOINT_EVERY_S):  # fmt: skip
            return
        self._started, self._running = now, True
        future = self._thread.submit(checkpoint, self.connection)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        self._running = False
        if future.exception() is not None:  # the next one retries; the WAL only grows meanwhile
            log.warning("WAL checkpoint failed: %r", future.exception())
        else:
            self.to_finish = True

    async def finish(self, db: SqliteDb) -> None:
        """The second step, under the store's lock, on the store's own connection and thread."""
        self.to_finish = False
        try:
            await db.on_thread(checkpoint, db.conn)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %r", exc)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self.connection is not None:
            self.connection.close()


def checkpoint(conn: sqlite3.Connection) -> None:
    # Fetched, so the statement is finished: one left open makes the next COMMIT fail.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
