"""`hub.store.dbapi.Db` on one sqlite3 connection: statements, and sqlite3's errors as the hub's own
(a busy or failing database is `StoreBusy`, a unique-index violation `UniqueViolation`)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hub.errors import StoreBusy
from hub.store.dbapi import Params, UniqueViolation

T = TypeVar("T")


class SqliteDb:
    """Executes statements and translates driver errors (hub.store.dbapi.Db on SQLite).

    Statements of the message path run inline on the event loop: on indexed rows they take tens of
    microseconds, less than a hand-off to a driver thread and back (which, about ten times per
    message, was the hub's largest cost in the profile; bench/README.md). What may scan or wait
    for the disk runs on the store's one thread instead (`offloaded()`: reconciliation, housekeeping,
    ad-hoc queries; and every COMMIT, whose fsync is the slow part). The store's lock keeps the two
    from ever using the connection at the same time.
    """

    for_update = ""

    def __init__(self, conn: sqlite3.Connection, worker: ThreadPoolExecutor, *, offload: bool = False) -> None:
        self.conn = conn
        self._worker = worker
        self._offload = offload

    def offloaded(self) -> SqliteDb:
        """The same connection with every statement run on the store's thread."""
        return SqliteDb(self.conn, self._worker, offload=True)

    async def on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.on_thread(fn, *args) if self._offload else fn(*args)

    async def run(self, sql: str, params: Params = ()) -> int:
        return await self._call(self._run, sql, params)

    async def one(self, sql: str, params: Params = ()) -> Any:
        return await self._call(self._one, sql, params)

    async def all(self, sql: str, params: Params = ()) -> list[Any]:
        return await self._call(self._all, sql, params)

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(self._many, sql, rows)

    async def commit(self) -> None:
        await self.on_thread(self._run, "COMMIT", ())

    async def last_ids(self, n: int) -> list[int] | None:
        # Consecutive: the writer holds the only write transaction, and AUTOINCREMENT gives each
        # insert the highest id so far plus one.
        last = int(self.conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - n + 1, last + 1))

    def _run(self, sql: str, params: Params) -> int:
        try:
            return int(self.conn.execute(sql, params).rowcount)
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _one(self, sql: str, params: Params) -> Any:
        try:
            return self.conn.execute(sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _all(self, sql: str, params: Params) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc
