"""No full card or ID number leaves a bank's message in clear: over a full demo run, the hub's
JSON logs, the store's plain-text dump (every table and column), the manual and dead queues and
every message the hub sent to CRMs and BOSS are scanned for the numbers the simulators used."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from hub.bootstrap import Hub
from hub.demo import run_demo
from hub.logging import configure_logging
from hub.settings import load_settings
from simulators.runner import Simulators


class Scan:
    """The demo's watch: taps CRM and BOSS traffic from the start, drains the queues at the end."""

    def __init__(self) -> None:
        self.sent: list[str] = []  # what the hub sent to CRMs and BOSS: routing key, headers, body
        self.from_banks: list[str] = []  # the banks' signing messages: the numbers must be found there
        self.queued: dict[str, list[str]] = {"manual": [], "dead": []}
        self.store_dump = ""
        self.numbers: set[str] = set()
        self._connection: AbstractRobustConnection | None = None
        self._tap: AbstractQueue | None = None
        self._bank_tap: AbstractQueue | None = None

    async def started(self, hub: Hub) -> None:
        self._connection = await aio_pika.connect_robust(hub.settings.amqp_url.get_secret_value())
        channel = await self._connection.channel()
        # A private, exclusive classic queue: deleted with the connection, no quorum queue left over.
        self._tap = await channel.declare_queue(
            f"tap-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        for key in ("crm.#", "boss.#"):
            await self._tap.bind(hub.deps.names.outbound_exchange, key)
        self._bank_tap = await channel.declare_queue(
            f"tap-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        await self._bank_tap.bind(hub.deps.names.inbound_exchange, "bank.*.sign.#")

    async def finished(self, hub: Hub, sims: Simulators) -> None:
        assert self._connection is not None and self._tap is not None and self._bank_tap is not None
        self.numbers = {
            n for accounts in sims.world.accounts.values() for a in accounts for n in (a.account_no, a.id_no)
        }
        channel = await self._connection.channel()
        self.sent = await _drain(self._tap)
        self.from_banks = await _drain(self._bank_tap)
        for name, queue in (("manual", hub.deps.names.manual_queue), ("dead", hub.deps.names.dead_queue)):
            self.queued[name] = await _drain(await channel.get_queue(queue, ensure=True))
        self.store_dump = "\n".join(_dump(Path(hub.settings.store)))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def _drain(queue: AbstractQueue) -> list[str]:
    got: list[str] = []
    while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
        got.append(f"{message.routing_key} {json.dumps(message.headers, default=str)} "
                   f"{message.body.decode('utf-8', errors='replace')}")  # fmt: skip
    return got


def _dump(db: Path) -> Iterator[str]:
    """`sqlite3 .dump`, and every value of every table as text (a .dump writes blobs as hex)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        yield from conn.iterdump()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                yield " | ".join(
                    v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in row
                )


@contextlib.contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved
        root.setLevel(saved[1])


def _leaks(text: str, numbers: set[str]) -> list[str]:
    upper = text.upper()
    return sorted(n[:4] + "…" for n in numbers if n.upper() in upper)


@pytest.mark.timeout(180)
async def test_a_full_demo_run_shows_no_full_card_or_id_number_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scan = Scan()
    settings = load_settings(prefix=f"tpii{uuid.uuid4().hex[:6]}")
    try:
        with _captured_logs() as logs:
            code = await run_demo(settings, flows=8, seed=13, watch=scan)
    finally:
        await scan.close()
    out = capsys.readouterr().out

    assert code == 0, out
    assert len(scan.numbers) >= 20, "the simulators' card and ID numbers"
    # The scan finds what is there: the banks' own messages carry the full numbers.
    assert len(_leaks("\n".join(scan.from_banks), scan.numbers)) >= 4, "the numbers in the banks' messages"
    hub_logs = logs.getvalue()
    assert "refused" in hub_logs and len(hub_logs.splitlines()) > 50, "the hub's logs were captured"
    assert scan.sent and any(".sign.notify " in m for m in scan.sent), "CRM traffic was tapped"
    assert scan.queued["dead"] and scan.queued["manual"], "the dead and manual queues had copies"
    assert "CREATE TABLE agreements" in scan.store_dump
    assert _leaks(hub_logs, scan.numbers) == [], "a full number in the logs"
    assert _leaks(scan.store_dump, scan.numbers) == [], "a full number in the store"
    assert _leaks("\n".join(scan.sent), scan.numbers) == [], "a full number sent to a CRM or BOSS"
    assert _leaks("\n".join(scan.queued["dead"]), scan.numbers) == [], "a full number in the dead queue"
    assert _leaks("\n".join(scan.queued["manual"]), scan.numbers) == [], "a full number in the manual queue"
