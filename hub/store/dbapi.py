"""The small database interface the unit of work is written against, so one unit of work serves
SQLite and PostgreSQL: statements use `?` (or `:name` with a dict) placeholders, driver errors
arrive as the hub's own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

Params = Sequence[Any] | dict[str, Any]
# A store's `query`: read-only rows as dicts, outside any unit of work (on SQLite under the store's
# lock, on its thread; on PostgreSQL on a pooled connection). The read-side row classes use it.
Query = Callable[[str, Sequence[Any]], Awaitable[list[dict[str, Any]]]]


class UniqueViolation(Exception):
    """A unique index refused a write."""


class Db(Protocol):
    # Appended to a SELECT that is followed by an update in the same unit of work: PostgreSQL
    # locks the row against a second hub process; SQLite has one writer anyway.
    for_update: str

    async def run(self, sql: str, params: Params = ()) -> int:
        """Executes; returns the number of rows changed. Raises UniqueViolation or StoreBusy."""
        ...

    async def one(self, sql: str, params: Params = ()) -> Any: ...
    async def all(self, sql: str, params: Params = ()) -> list[Any]: ...
    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def last_ids(self, n: int) -> list[int] | None:
        """The ids of the `n` rows the last `many` inserted into an AUTOINCREMENT table, where the
        driver can tell them without another round trip (else None)."""
        ...

    def offloaded(self) -> Db:
        """This database for statements that may scan (reconciliation, housekeeping): on SQLite
        they leave the event loop for the store's thread; PostgreSQL's driver never blocks it."""
        ...
