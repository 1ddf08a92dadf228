"""A store whose units of work fail as a busy database would, for chosen messages.

Passed to the composition root in place of the real store (no patching): everything else is the
real store, SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.errors import StoreBusy
from hub.store.unit_of_work import Store, UnitOfWork


class _FlakyUnitOfWork:
    def __init__(self, inner: UnitOfWork, store: FlakyStore) -> None:
        self._inner = inner
        self._store = store

    async def remember(self, sender: str, message_id: str, msg_type: str, now: Any) -> None:
        self._store.attempts[message_id] += 1
        left = self._store.failures.get(message_id, 0)
        if left != 0:
            self._store.failures[message_id] = left - 1
            raise StoreBusy("database is locked (injected)")
        await self._inner.remember(sender, message_id, msg_type, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FlakyStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.failures: dict[str, int] = {}  # message_id -> failures left (-1: always)
        self.attempts: Counter[str] = Counter()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Any]:
        async with self.inner.unit_of_work() as uow:
            yield _FlakyUnitOfWork(uow, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
