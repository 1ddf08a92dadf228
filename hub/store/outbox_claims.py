"""The outbox relay's side of the SQLite store: which unsent rows a relay round claims, and the
"sent" marks of the rows the broker confirmed, buffered until a transaction writes them.

One relay per SQLite store, so a claim locks nothing: it reads past the highest id claimed so far
(ids only grow, AUTOINCREMENT, and one writer at a time makes them visible in order), plus the
claimed rows that came back unmarked. Rows a unit of work has just committed may be handed over
without reading them back (`OutboxClaims.committed`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from hub.errors import StoreBusy
from hub.store.rows import outbox_row, ts
from hub.store.sqlite_db import SqliteDb
from hub.store.unit_of_work import OutboxClaim, OutboxRow

log = logging.getLogger("signhub.store")
# Confirmed outbox rows are marked sent by the next unit of work, in its transaction; when none
# comes within this time, by a transaction of their own (see OutboxMarks.add).
MARK_WITHIN_S = 0.05


class OutboxMarks:
    """Confirmed rows not yet marked sent (id -> sent_at), and the timer that writes them alone."""

    def __init__(self, db: SqliteDb, lock: asyncio.Lock, synchronous: str) -> None:
        self._db = db
        self._lock = lock  # the store's: a mark is written in its transaction or alone under it
        self._synchronous = synchronous
        self.pending: dict[int, str] = {}
        self._due: asyncio.TimerHandle | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, ids: Sequence[int], now: datetime) -> None:
        """Rows the broker confirmed. The mark rides along with the next unit of work, written in
        its transaction, or, when none comes within MARK_WITHIN_S, gets a transaction of its own:
        at light traffic a transaction per relay round was a tenth of the hub's work. Losing a
        mark (a crash first) only means publishing the row again under the same message_id; this
        process does not publish it twice (its claims go past the ids it took)."""
        if not ids:
            return
        stamp = str(ts(now))
        self.pending.update(dict.fromkeys(ids, stamp))
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(MARK_WITHIN_S, self._write_later)

    def _write_later(self) -> None:
        self._due = None
        if self.pending and not self._closed:
            task = asyncio.create_task(self.write_alone(), name="outbox-marks")
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def write_alone(self) -> None:
        async with self._lock:
            if not self.pending or self._closed:
                return
            # Inline and without its own fsync: in WAL mode the next FULL commit syncs it along
            # with its own, and with automatic checkpoints off nothing here waits for the disk.
            await self._db.run("PRAGMA synchronous=NORMAL")
            try:
                self.write()
            except Exception as exc:  # kept: the next unit of work or timer writes them
                log.warning("could not mark outbox rows sent: %r", exc)
            finally:
                await self._db.run(f"PRAGMA synchronous={self._synchronous}")

    def write(self) -> dict[int, str]:
        """Writes the pending marks (under the lock, in the caller's transaction or alone) and
        returns them, so that a transaction rolled back can keep them (`keep`)."""
        marks, self.pending = self.pending, {}
        by_stamp: dict[str, list[int]] = {}
        for row_id, stamp in marks.items():
            by_stamp.setdefault(stamp, []).append(row_id)
        try:
            for stamp, ids in by_stamp.items():
                for k in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
                    chunk = ids[k : k + 500]
                    self._db.conn.execute(
                        f"UPDATE outbox SET sent_at=? WHERE id IN ({','.join('?' * len(chunk))})", (stamp, *chunk)
                    )
        except sqlite3.Error:
            self.keep(marks)
            raise
        return marks

    def keep(self, marks: dict[int, str]) -> None:
        self.pending = marks | self.pending
        if self.pending and self._due is None and not self._closed:
            self._due = asyncio.get_running_loop().call_later(MARK_WITHIN_S, self._write_later)

    async def close(self) -> None:
        """Writes what is pending; nothing is written after."""
        if self._due is not None:
            self._due.cancel()
        await self.write_alone()
        self._closed = True


class OutboxClaims:
    """The relay's claims: rows read on the relay's own read-only connection (`reader`; without
    one, an in-memory store, on the store's connection under its lock)."""

    def __init__(self, db: SqliteDb, lock: asyncio.Lock, marks: OutboxMarks) -> None:
        self._db, self._lock, self._marks = db, lock, marks
        self.reader: sqlite3.Connection | None = None
        self._claimed_high = 0
        self._returned: set[int] = set()

    @asynccontextmanager
    async def claim(self, limit: int, skip: Collection[int] = ()) -> AsyncIterator[OutboxClaim]:
        """The oldest unsent rows for the relay: past the highest id claimed so far, plus the
        claimed rows that came back unmarked (a failed publish or round), so a claim never rereads
        the rows other rounds have in flight. A fresh store starts from zero and so publishes
        whatever an earlier process left unsent."""
        again = sorted(i for i in self._returned if i not in skip)[:limit]
        rows = await self.read_unsent("id IN (" + ",".join("?" * len(again)) + ")", again) if again else []
        rows += await self.read_unsent("id > ?", (self._claimed_high,), limit - len(rows))
        ids = {r.id for r in rows if r.id is not None}
        self._returned -= ids | set(again)  # (one marked sent meanwhile is not read again: forget it)
        self._claimed_high = max([self._claimed_high, *ids])
        async with self._claim(rows) as claim:
            yield claim

    def committed(self, rows: Sequence[OutboxRow]) -> AbstractAsyncContextManager[OutboxClaim] | None:
        """Rows a unit of work has just committed, for the relay without reading them back, when
        they are exactly the next ones past the highest id claimed (else None, and a claim reads
        them: a gap means rows of another writer nobody has claimed yet)."""
        ids = sorted(r.id for r in rows if r.id is not None)
        if not ids or len(ids) != len(rows) or ids != list(range(self._claimed_high + 1, ids[-1] + 1)):
            return None
        self._claimed_high = ids[-1]
        return self._claim(sorted(rows, key=lambda r: r.id or 0))

    @asynccontextmanager
    async def _claim(self, rows: list[OutboxRow]) -> AsyncIterator[OutboxClaim]:
        ids = {r.id for r in rows if r.id is not None}
        marked: set[int] = set()

        async def mark(done: Sequence[int], now: datetime) -> None:
            self._marks.add(done, now)
            marked.update(done)

        try:
            yield OutboxClaim(rows, mark)
        finally:
            self._returned |= ids - marked

    async def read_unsent(self, where: str, params: Sequence[Any], limit: int = -1) -> list[OutboxRow]:
        sql = f"SELECT * FROM outbox WHERE sent_at IS NULL AND {where} ORDER BY id LIMIT ?"
        if self.reader is not None:
            try:
                found = self.reader.execute(sql, (*params, limit)).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreBusy(str(exc)) from exc
        else:
            async with self._lock:
                found = await self._db.all(sql, (*params, limit))
        return [outbox_row(r) for r in found]

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
