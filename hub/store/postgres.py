"""The store on PostgreSQL (asyncpg), for several hub processes sharing one database.

The unit of work is the same code as on SQLite (`SqlUnitOfWork` over the `Db` interface); this
module translates placeholders and driver errors, locks flow rows a unit of work will update
(`FOR UPDATE`, so two hub processes never decide on one flow at once), and lets each process's
relay claim outbox rows with `FOR UPDATE SKIP LOCKED`, so a row is published by one relay at a time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from hub.errors import StoreBusy
from hub.store.dbapi import Params, UniqueViolation
from hub.store.named_reads import NamedReads
from hub.store.rows import outbox_row, ts
from hub.store.schema import MIGRATIONS
from hub.store.sql_unit_of_work import SqlUnitOfWork
from hub.store.unit_of_work import OutboxClaim, OutboxRow

_NAMED = re.compile(r"(?<!:):([a-z_0-9]+)")
_TRANSIENT = (asyncpg.PostgresConnectionError, asyncpg.exceptions.SerializationError,
              asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.LockNotAvailableError,
              ConnectionError, OSError)  # fmt: skip
_MIGRATION_LOCK = 0x5167_6875  # an advisory lock: one process migrates, the others wait


def translate(sql: str, params: Params) -> tuple[str, list[Any]]:
    """`?` / `:name` placeholders to PostgreSQL's `$n`."""
    if isinstance(params, dict):
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        return _NAMED.sub(number, sql), [params[n] for n in names]
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts)), list(params)


_GUARD = re.compile(
    r"CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s+BEGIN SELECT RAISE\(ABORT, '([^']*)'\); END;"
)
_REFUSE = ("CREATE OR REPLACE FUNCTION signhub_refuse() RETURNS trigger LANGUAGE plpgsql AS "
           "$f$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $f$;")  # fmt: skip


def _guard(match: re.Match[str]) -> str:
    name, event, table, message = match.groups()
    events = "DELETE OR TRUNCATE" if event == "DELETE" else event
    return (f"{_REFUSE}\nCREATE TRIGGER {name} BEFORE {events} ON {table} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION signhub_refuse('{message}');")  # fmt: skip


def ddl(script: str) -> str:
    """A migration written for SQLite, in PostgreSQL's words (a SQLite trigger that refuses a change
    becomes a PL/pgSQL one, which refuses TRUNCATE too)."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    return _GUARD.sub(_guard, script.replace("BLOB", "BYTEA"))


class PgDb:
    """hub.store.dbapi.Db on one asyncpg connection."""

    for_update = " FOR UPDATE"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def offloaded(self) -> PgDb:
        return self  # asyncpg awaits the server without blocking the event loop

    async def run(self, sql: str, params: Params = ()) -> int:
        text, args = translate(sql, params)
        try:
            status = await self.conn.execute(text, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        except _TRANSIENT as exc:
            raise StoreBusy(str(exc)) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def one(self, sql: str, params: Params = ()) -> Any:
        text, args = translate(sql, params)
        try:
            return await self.conn.fetchrow(text, *args)
        except _TRANSIENT as exc:
            raise StoreBusy(str(exc)) from exc

    async def all(self, sql: str, params: Params = ()) -> list[Any]:
        text, args = translate(sql, params)
        try:
            return list(await self.conn.fetch(text, *args))
        except _TRANSIENT as exc:
            raise StoreBusy(str(exc)) from exc

    async def last_ids(self, n: int) -> list[int] | None:
        return None  # several hub processes claim rows with SKIP LOCKED; none is handed over

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        text, _ = translate(sql, rows[0] if rows else ())
        try:
            await self.conn.executemany(text, [list(r) for r in rows])
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        except _TRANSIENT as exc:
            raise StoreBusy(str(exc)) from exc


async def _mark_sent(db: PgDb, ids: Sequence[int], now: datetime) -> None:
    if ids:
        await db.run("UPDATE outbox SET sent_at=? WHERE id = ANY(?::bigint[])", (ts(now), list(ids)))


class PostgresStore(NamedReads):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # A relay round holds a pooled connection (its claim's transaction) until the broker
        # confirmed its rows: a quarter of the pool, so that units of work always find one.
        self.relay_rounds = max(1, pool.get_max_size() // 4)

    @classmethod
    async def open(cls, url: str, *, max_size: int = 10) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreBusy(f"cannot reach PostgreSQL: {exc}") from exc
        store = cls(pool)
        await store._migrate()
        return store

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
                for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                    async with conn.transaction():
                        await conn.execute(ddl(script))
                        await conn.execute("INSERT INTO schema_version VALUES ($1)", number)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlUnitOfWork]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield SqlUnitOfWork(PgDb(conn))
        except _TRANSIENT as exc:
            raise StoreBusy(str(exc)) from exc

    @asynccontextmanager
    async def bulk_work(self) -> AsyncIterator[None]:
        yield  # the server's cache is the server's

    @asynccontextmanager
    async def claim_outbox(self, limit: int, skip: Collection[int] = ()) -> AsyncIterator[OutboxClaim]:
        async with self._pool.acquire() as conn, conn.transaction():
            db = PgDb(conn)
            # The rows stay locked until this transaction ends: another relay (or another round
            # of this one, which `skip` names too) skips them.
            rows = await db.all(
                "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
                (limit,),
            )
            claimed = [outbox_row(r) for r in rows if r["id"] not in skip]
            yield OutboxClaim(claimed, lambda ids, now: _mark_sent(db, ids, now))

    def claim_committed(self, rows: Sequence[OutboxRow]) -> AbstractAsyncContextManager[OutboxClaim] | None:
        return None  # a row is claimed under SKIP LOCKED only, so that several hub processes share it

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        async with self._pool.acquire() as conn:
            await _mark_sent(PgDb(conn), ids, now)

    async def due_flows(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self.query(
            "SELECT bank, request_id FROM flows WHERE state='VERIFYING' AND deadline<=? ORDER BY deadline LIMIT ?",
            (ts(now), limit),
        )
        return [(r["bank"], r["request_id"]) for r in rows]

    async def due_sessions(self, now: datetime, limit: int) -> list[str]:
        rows = await self.query(
            "SELECT session_id FROM signing_sessions WHERE state IN ('CREATED', 'ENTERED', 'AT_BANK')"
            " AND expires_at<=? ORDER BY expires_at LIMIT ?",
            (ts(now), limit),
        )
        return [r["session_id"] for r in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.query(
            "SELECT (SELECT count(*) FROM agreements WHERE status='ACTIVE') AS agreements_active,"
            " (SELECT count(*) FROM cases WHERE state='OPEN') AS cases_open,"
            " (SELECT count(*) FROM dead_messages) AS dead_messages,"
            " (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS outbox_unsent,"
            " (SELECT count(*) FROM flows) AS flows"
        )
        return {k: int(v) for k, v in rows[0].items()}

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            return [dict(r) for r in await PgDb(conn).all(sql, params)]

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        async with self._pool.acquire() as conn:
            db = PgDb(conn)
            await db.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
            )
            row = await db.one("SELECT value FROM meta WHERE key=?", (key,))
        return str(row["value"])

    async def close(self) -> None:
        await self._pool.close()
