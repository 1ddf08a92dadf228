"""A fresh PostgreSQL database for one test, dropped afterwards (the machine's server, trust auth).

The same helper the fault script uses (`bench.fault_hub.hub_store`), so there is one way to make
and drop a throw-away database; SIGNHUB_TEST_PG names the server's admin URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.fault_hub import hub_store


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """Yields the URL of a new, empty database."""
    async with hub_store("postgres", Path(".")) as url:
        yield url
