"""The hub under fault: a `signhub run` subprocess that can be SIGKILLed and restarted, its own
prefix, small registry and segment table, a SQLite file or a fresh PostgreSQL database, and the
store counts a fault run checks. Shared by `bench/faults.py` and `bench/fuzz.py`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from contracts.topology import Names
from hub.messaging.topology import HubNames, delete_topology
from hub.parties import Registry

AMQP_URL = os.environ.get("SIGNHUB_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN_URL = os.environ.get("SIGNHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BANKS = ["ICBC", "CCB"]
PROVINCES = ["GD", "BJ"]
SEGMENTS = "prefix,province\n138,GD\n139,BJ\n"
RETRY_DELAYS = "0.5,1,2"
STARTED = b"started"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubConfig:
    prefix: str
    store: str
    workdir: Path
    http_port: int
    crm_timeout_s: float = 600.0
    extra: dict[str, str] | None = None
    amqp_url: str = AMQP_URL

    def env(self) -> dict[str, str]:
        (self.workdir / "segments.csv").write_text(SEGMENTS)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNHUB_")}
        key_file = self.workdir / "data.key"
        if not key_file.exists():
            key_file.write_text(Fernet.generate_key().decode())
        env |= {
            "SIGNHUB_AMQP_URL": self.amqp_url, "SIGNHUB_PREFIX": self.prefix, "SIGNHUB_STORE": self.store,
            "SIGNHUB_SEGMENTS": str(self.workdir / "segments.csv"), "SIGNHUB_FILES": str(self.workdir / "files"),
            "SIGNHUB_BANKS": ",".join(BANKS), "SIGNHUB_PROVINCES": ",".join(PROVINCES),
            "SIGNHUB_CRM_TIMEOUT_S": str(self.crm_timeout_s), "SIGNHUB_RETRY_DELAYS_S": RETRY_DELAYS,
            "SIGNHUB_DATA_KEY": key_file.read_text(), "SIGNHUB_HTTP_PORT": str(self.http_port),
            "SIGNHUB_LOG_LEVEL": "INFO",
        }  # fmt: skip
        return env | (self.extra or {})


class HubUnderFault:
    """One hub process at a time; `start` waits for its "started" log line."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.log_path = config.workdir / "hub.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._started = asyncio.Event()
        self._drain: asyncio.Task[None] | None = None

    async def spawn(self) -> None:
        self._started = asyncio.Event()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli", "run", env=self.config.env(), stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._drain = asyncio.create_task(self._read_log(self.proc))

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with self.log_path.open("ab") as log:
            while line := await proc.stderr.readline():
                log.write(line)
                if STARTED in line:
                    self._started.set()

    async def wait_started(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        waiter = asyncio.create_task(self._started.wait())
        exited = asyncio.create_task(self.proc.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            if not exited.done():
                exited.cancel()
        if waiter not in done:
            raise RuntimeError(f"the hub did not start within {timeout}s; see {self.log_path}")

    async def start(self, timeout: float = 60.0) -> None:
        await self.spawn()
        await self.wait_started(timeout)

    @property
    def started(self) -> bool:
        return self._started.is_set()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        if self._drain is not None:
            await self._drain

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                await self.kill()
        if self._drain is not None:
            await self._drain

    async def healthy(self) -> bool:
        """The health endpoint answers 200."""
        return await self._get_ok("/healthz")

    async def ready(self) -> bool:
        """`/readyz` answers 200: every part of the hub works (hub.liveness)."""
        return await self._get_ok("/readyz")

    async def _get_ok(self, path: str) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.config.http_port), 2.0
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5.0)
            return b" 200 " in status
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def hub_store(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A SQLite file in `workdir`, or a fresh PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield str(workdir / "hub.db")
        return
    import asyncpg

    name = f"signhub_f{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def store_rows(store: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of a plain query on the hub's store (SQLite file or PostgreSQL URL)."""
    if store.startswith(("postgresql://", "postgres://")):
        import asyncpg

        conn = await asyncpg.connect(store)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as conn:
        return list(conn.execute(sql))


async def delete_hub_topology(prefix: str, amqp_url: str = AMQP_URL) -> None:
    registry = Registry.of(BANKS, PROVINCES)
    await delete_topology(amqp_url, HubNames(Names(prefix)), registry.parties(), len(RETRY_DELAYS.split(",")))


def new_prefix(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:10]}"
