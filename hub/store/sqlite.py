"""The embedded store on SQLite (the standard sqlite3 module), WAL mode, one writer at a time.

Driver errors become the hub's own: a busy or failing database is `StoreBusy` (transient), a
unique-index violation is `Conflict`. Flows never see sqlite3. The unit of work is the
dialect-neutral one (hub.store.sql_unit_of_work) on `SqliteDb`; the relay's claims and marks are in
hub.store.outbox_claims, the WAL checkpoint schedule in hub.store.checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.errors import StoreBusy
from hub.store.checkpoints import Checkpoints
from hub.store.named_reads import NamedReads
from hub.store.outbox_claims import OutboxClaims, OutboxMarks
from hub.store.rows import ts
from hub.store.schema import MIGRATIONS
from hub.store.sql_unit_of_work import SqlUnitOfWork
from hub.store.sqlite_db import SqliteDb
from hub.store.unit_of_work import OutboxClaim, OutboxRow

log = logging.getLogger("signhub.store")
WAL_KEEP_BYTES = 64 * 1024 * 1024
BULK_CACHE_KIB = 128 * 1024


def _create_private(path: Path) -> None:
    """Creates a new store file readable by its owner alone (0600) before SQLite opens it: SQLite
    creates its WAL and shared-memory files with the database file's mode, so they are private too.
    An existing file keeps its mode."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _connect(path: str | Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)  # fmt: skip
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


class SqliteStore(NamedReads):
    """The store: units of work for flows, plus the relay's and the timers' queries."""

    def __init__(self, conn: sqlite3.Connection, *, synchronous: str = "FULL") -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signhub-store")
        self._db = SqliteDb(conn, self._worker)
        self._slow = self._db.offloaded()
        # One writer at a time: SQLite allows no more, and the lock keeps waits in Python, not in
        # the driver's busy handler. It also keeps the event loop and the store's thread from
        # using the connection at once.
        self._lock = asyncio.Lock()
        self._closed = False
        self.relay_rounds = 64  # a claim holds nothing here, so rounds waiting for confirms cost little
        self._marks = OutboxMarks(self._db, self._lock, synchronous)
        self._claims = OutboxClaims(self._db, self._lock, self._marks)
        self._checkpoints = Checkpoints()

    @classmethod
    async def open(cls, path: str | Path, *, synchronous: str = "FULL") -> SqliteStore:
        in_memory = str(path) == ":memory:"  # a second connection to ":memory:" would be another database
        if not in_memory:
            _create_private(Path(path))
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # see hub.store.checkpoints
        conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")  # a WAL started over shrinks to this
        store = cls(conn, synchronous=synchronous)
        await store._slow.on_thread(store._migrate)
        if not in_memory:
            # The relay reads the outbox on its own connection: a WAL reader sees committed rows
            # only and needs neither the lock nor to wait for a group being committed.
            store._claims.reader = _connect(path, read_only=True)
            store._checkpoints.connection = _connect(path)
        return store

    def _migrate(self) -> None:
        conn = self._db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = (row[0] if row else None) or 0
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.executescript(f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({number});\nCOMMIT;")

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self._lock:
            if self._checkpoints.to_finish:
                await self._checkpoints.finish(self._db)
            await self._db.run("BEGIN IMMEDIATE")
            try:
                marks = self._marks.write()
            except sqlite3.Error as exc:  # only the statement is undone; the marks are kept for later
                log.warning("could not mark outbox rows sent: %r", exc)
                marks = {}
            try:
                yield SqlUnitOfWork(self._db)
            except BaseException:
                self._db.conn.execute("ROLLBACK")
                self._marks.keep(marks)
                raise
            try:
                await self._db.commit()
            except StoreBusy:
                self._db.conn.execute("ROLLBACK")
                self._marks.keep(marks)
                raise
        self._checkpoints.after_commit()

    @asynccontextmanager
    async def bulk_work(self) -> AsyncIterator[None]:
        """A larger page cache while a reconciliation writes its corrections, then the usual one
        again: at 10 million agreements 128 MB cut the corrections from 34.5 to 27.7 s, but kept
        all the time it would grow the hub's memory with its database (bench/recon.py)."""
        async with self._lock:
            usual = self._db.conn.execute("PRAGMA cache_size").fetchone()[0]
            self._db.conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            async with self._lock:
                self._db.conn.execute(f"PRAGMA cache_size={int(usual)}")
                self._db.conn.execute("PRAGMA shrink_memory")

    def claim_outbox(self, limit: int, skip: Collection[int] = ()) -> AbstractAsyncContextManager[OutboxClaim]:
        """The oldest unsent rows for the relay (one relay per SQLite store: nothing to lock)."""
        return self._claims.claim(limit, skip)

    def claim_committed(self, rows: Sequence[OutboxRow]) -> AbstractAsyncContextManager[OutboxClaim] | None:
        return self._claims.committed(rows)

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        self._marks.add(ids, now)

    async def due_sessions(self, now: datetime, limit: int) -> list[str]:
        """Open flow-1 sessions past their window, for the sweeper to expire."""
        async with self._lock:
            rows = await self._db.all(
                "SELECT session_id FROM signing_sessions WHERE state IN ('CREATED', 'ENTERED', 'AT_BANK')"
                " AND expires_at<=? ORDER BY expires_at LIMIT ?",
                (ts(now), limit),
            )
        return [r["session_id"] for r in rows]

    async def due_flows(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        async with self._lock:
            rows = await self._db.all(
                "SELECT bank, request_id FROM flows WHERE state='VERIFYING' AND deadline<=? ORDER BY deadline"
                " LIMIT ?",
                (ts(now), limit),
            )
        return [(r["bank"], r["request_id"]) for r in rows]

    async def counts(self) -> dict[str, int]:
        queries = {
            "agreements_active": "SELECT count(*) FROM agreements WHERE status='ACTIVE'",
            "cases_open": "SELECT count(*) FROM cases WHERE state='OPEN'",
            "dead_messages": "SELECT count(*) FROM dead_messages",
            "outbox_unsent": "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
            "flows": "SELECT count(*) FROM flows",
        }
        out: dict[str, int] = {}
        async with self._lock:
            for name, sql in queries.items():
                row = await self._slow.one(sql)
                out[name] = int(row[0])
            out["outbox_unsent"] = max(0, out["outbox_unsent"] - len(self._marks.pending))  # sent, mark pending
        return out

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Read-only rows as dicts, for the CLI, the HTTP endpoints and tests."""
        async with self._lock:
            rows = await self._slow.all(sql, params)
        return [dict(r) for r in rows]

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        """Stores `value` under `key` unless one is there; returns the stored value."""
        async with self._lock:
            await self._slow.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
            )
            row = await self._db.one("SELECT value FROM meta WHERE key=?", (key,))
        return str(row["value"])

    async def close(self) -> None:
        if self._closed:
            return
        await self._marks.close()
        self._closed = True
        async with self._lock:
            await self._slow.on_thread(self._db.conn.close)
            self._claims.close()
        self._checkpoints.close()
        self._worker.shutdown(wait=True)
