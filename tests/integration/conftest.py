"""Fixtures of the integration tests: the store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.store.postgres import PostgresStore
from hub.store.sqlite import SqliteStore
from hub.store.unit_of_work import Store
from tests.support.pg import fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = await SqliteStore.open(tmp_path / "hub.db")
        try:
            yield opened
        finally:
            await opened.close()
        return
    async with fresh_database() as url:
        opened = await PostgresStore.open(url)
        try:
            yield opened
        finally:
            await opened.close()
