"""Personal data stays where the contract lets it be (the rules: `tests/support/personal_scan.py`).

Over a full demo run (SQLite), and over a signing, refused messages, a retried message and one whose
retries ran out on SQLite and on PostgreSQL, the hub's JSON logs, /metrics, the store (every table
and column), the manual and dead queues and every message the hub sent to CRMs and BOSS are scanned
for the card and ID numbers, phone numbers and holder names the parties used."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from hub.bootstrap import Hub, build_hub
from hub.demo import run_demo
from hub.logging import configure_logging
from hub.messaging.topology import delete_topology
from hub.settings import load_settings
from hub.store.postgres import PostgresStore
from hub.store.sqlite import SqliteStore
from simulators.fleet import Simulators
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.flaky import FlakyStore
from tests.support.hubrun import AMQP_URL, hub_settings, party_queues
from tests.support.personal_scan import (
    Personal,
    as_text,
    found,
    hub_log_lines,
    metrics,
    not_sealed,
    store_tables,
    without_queue_copies,
)
from tests.support.pg import fresh_database
from tests.support.probe import Match, Probe, Received, to


class Scan:
    """The demo's watch: taps CRM and BOSS traffic from the start, drains the queues at the end."""

    def __init__(self) -> None:
        self.sent: list[str] = []  # what the hub sent to CRMs and BOSS: routing key, headers, body
        self.from_banks: list[str] = []  # the banks' signing messages: the numbers must be found there
        self.queued: dict[str, list[str]] = {"manual": [], "dead": []}
        self.store_dump = ""
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.metrics = ""
        self.used = Personal()
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
        accounts = [a for of_bank in sims.world.accounts.values() for a in of_bank]
        self.used = Personal(numbers={n for a in accounts for n in (a.account_no, a.id_no)},
                             phones={s.phone for subs in sims.world.subscribers.values() for s in subs},
                             names={a.holder_name for a in accounts})  # fmt: skip
        channel = await self._connection.channel()
        self.sent = await _drain(self._tap)
        self.from_banks = await _drain(self._bank_tap)
        for name, queue in (("manual", hub.deps.names.manual_queue), ("dead", hub.deps.names.dead_queue)):
            self.queued[name] = await _drain(await channel.get_queue(queue, ensure=True))
        self.store_dump = "\n".join(_dump(Path(hub.settings.store)))
        self.tables = await store_tables(hub.store, postgres=False)
        self.metrics = await metrics(hub.settings.http_port)

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


@pytest.mark.timeout(180)
async def test_a_full_demo_run_leaves_personal_data_only_where_the_contract_lets_it_be(
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
    used, sent, banks = scan.used, "\n".join(scan.sent), "\n".join(scan.from_banks)
    all_logs = logs.getvalue()
    hub_logs = hub_log_lines(all_logs)

    assert code == 0, out
    assert len(used.numbers) >= 20 and len(used.phones) >= 20 and len(used.names) >= 10, "the simulators' data"
    # The scan finds what is there: the banks' own messages carry numbers, phones and names in full.
    assert len(found(banks, used.numbers)) >= 4, "the numbers in the banks' messages"
    assert found(banks, used.phones) and found(banks, used.names), "phones and names in the banks' messages"
    assert "refused" in hub_logs and len(hub_logs.splitlines()) > 50, "the hub's logs were captured"
    assert scan.sent and any(".sign.notify " in m for m in scan.sent), "CRM traffic was tapped"
    assert found(sent, used.phones), "the phones CRMs are sent"
    assert scan.queued["dead"] and scan.queued["manual"], "the dead and manual queues had copies"
    assert "CREATE TABLE agreements" in scan.store_dump and scan.tables["agreements"]
    assert "signhub_messages_in_total" in scan.metrics
    assert found(all_logs, used.numbers) == [], "a full number in the logs"
    assert found(hub_logs, used.phones | used.names) == [], "a phone number or holder name in the hub's logs"
    assert found(scan.metrics, used.numbers | used.phones | used.names) == [], "personal data in /metrics"
    assert found(scan.store_dump, used.numbers) == [], "a full number in the store"
    assert found(as_text(without_queue_copies(scan.tables)), used.names) == [], "a holder name in the store"
    assert not_sealed(scan.tables) == [], "a column meant for ciphertext or a fingerprint holds something else"
    assert found(sent, used.numbers | used.names) == [], "a full number or holder name sent to a CRM or BOSS"
    assert found("\n".join(scan.queued["dead"]), used.numbers) == [], "a full number in the dead queue"
    assert found("\n".join(scan.queued["manual"]), used.numbers) == [], "a full number in the manual queue"


@asynccontextmanager
async def _hub_on(kind: str, workdir: Path) -> AsyncIterator[tuple[Hub, Probe, FlakyStore]]:
    """A started hub on a fresh PostgreSQL database or a SQLite file, its units of work failing for
    chosen messages, and a probe on every party, manual and dead queue; all removed afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_database()) if kind == "postgres" else str(workdir / "hub.db")
        settings = hub_settings(workdir, store=url)
        store = FlakyStore(await (PostgresStore.open(url) if kind == "postgres" else SqliteStore.open(url)))
        hub = await build_hub(settings, store=store)
        await hub.start()
        stack.push_async_callback(delete_topology, AMQP_URL, hub.hub_names, hub.registry.parties(),
                                  len(settings.retry_delays_s))  # fmt: skip
        stack.push_async_callback(hub.stop)
        probe = await Probe.connect(AMQP_URL, settings.prefix, party_queues(settings))
        stack.push_async_callback(probe.close)
        yield hub, probe, store


def _someone(used: Personal) -> dict[str, str]:
    """A subscriber's number, card, ID number and name, new to this run; remembered in `used`."""
    person = {"phone": fresh_phone(), "account_no": "6222" + _digits(15), "id_no": _digits(17) + "X",
              "holder_name": "".join(chr(random.randint(0x4E00, 0x9FA5)) for _ in range(3))}  # fmt: skip
    used.numbers |= {person["account_no"], person["id_no"]}
    used.phones.add(person["phone"])
    used.names.add(person["holder_name"])
    return person


def _digits(n: int) -> str:
    return "".join(random.choices("0123456789", k=n))


async def _sign_to_the_end(probe: Probe, used: Personal) -> None:
    request = sign_request(**_someone(used))
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"]))
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    notify = await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=request["phone"]))
    await probe.publish("crm.GD", "boss.sync", {"agreement_id": notify.body["agreement_id"], "phone": request["phone"],
                                                "action": "ADD", "user_type": "PREPAID", "recharge_threshold": 1000,
                                                "recharge_amount": 5000, "auto_pay": False})  # fmt: skip
    await probe.expect("agreement.sync at BOSS", to("boss.GD", "agreement.sync", phone=request["phone"]))


async def _refused(probe: Probe, used: Personal) -> list[str]:
    """Three messages carrying everything personal that the hub refuses: invalid, not JSON, and
    from a sender it does not know; returns their message ids once each has its dead copy."""
    invalid = await probe.publish("bank.ICBC", "sign.request", sign_request(**_someone(used), channel="FAX"))
    cut = json.dumps(sign_request(**_someone(used)), ensure_ascii=False).encode()[:-1]  # no closing brace
    not_json = await probe.publish("bank.ICBC", "sign.request", cut)
    stranger = await probe.publish("bank.NOPE", "sign.request", sign_request(**_someone(used)))
    for mid in (invalid, not_json):
        await probe.expect(f"message.rejected for {mid}", to("bank.ICBC", "message.rejected", message_id=mid))
    for mid in (invalid, not_json, stranger):
        await probe.expect(f"the dead copy of {mid}", _dead_copy(probe, mid))
    return [invalid, not_json, stranger]


async def _retried(probe: Probe, store: FlakyStore, used: Personal) -> list[str]:
    """A message that takes effect after one retry, and one whose retries run out (dead, told)."""
    once, always = f"retried-{uuid.uuid4().hex[:8]}", f"exhausted-{uuid.uuid4().hex[:8]}"
    store.failures[once], store.failures[always] = 1, -1
    request = sign_request(**_someone(used))
    await probe.publish("bank.ICBC", "sign.request", request, message_id=once)
    await probe.expect("verify.request after a retry", to("crm.GD", "verify.request", phone=request["phone"]))
    await probe.publish("bank.ICBC", "sign.request", sign_request(**_someone(used)), message_id=always)
    dead = await probe.expect("the dead copy of a message whose retries ran out", _dead_copy(probe, always))
    await probe.expect("its message.rejected", to("bank.ICBC", "message.rejected", message_id=always))
    assert store.attempts[once] == 2 and dead.headers["x-signhub-reason"] == "RETRIES_EXHAUSTED"
    return [always]


def _dead_copy(probe: Probe, mid: str) -> Match:
    return lambda r: r.queue == f"{probe.prefix}.dead" and r.message_id == mid


def _shown(messages: list[Received]) -> str:
    return "\n".join(f"{r.routing_key} {json.dumps(r.headers, default=str)} {r.raw.decode(errors='replace')}"
                     for r in messages)  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_signed_refused_and_retried_messages_leave_personal_data_only_where_the_contract_lets_it_be(
    kind: str, tmp_path: Path
) -> None:
    used = Personal()
    with _captured_logs() as logs:
        async with _hub_on(kind, tmp_path) as (hub, probe, store):
            await _sign_to_the_end(probe, used)
            dead_ids = await _refused(probe, used) + await _retried(probe, store, used)
            tables = await store_tables(hub.store, postgres=kind == "postgres")
            page = await metrics(hub.settings.http_port)
            received = list(probe.received)
    hub_logs = hub_log_lines(logs.getvalue())
    stored = as_text(tables)
    sent = _shown([r for r in received if r.routing_key.startswith(("crm.", "boss."))])
    dead = _shown([r for r in received if r.queue.endswith(".dead")])

    assert "attempt 0 of retried-" in hub_logs and "refused" in hub_logs, "the hub's logs were captured"
    assert {r["message_id"] for r in tables["dead_messages"]} == set(dead_ids), "every refusal was recorded"
    assert found(dead, used.phones), "the scan finds what is there: the dead copies keep the phone numbers"
    assert "signhub_messages_in_total" in page
    assert found(hub_logs, used.numbers | used.phones | used.names) == [], "personal data in the hub's logs"
    assert found(page, used.numbers | used.phones | used.names) == [], "personal data in /metrics"
    assert found(stored, used.numbers) == [], "a full number in the store"
    assert found(as_text(without_queue_copies(tables)), used.names) == [], "a holder name in the store"
    assert not_sealed(tables) == [], "a column meant for ciphertext or a fingerprint holds something else"
    assert found(sent, used.numbers | used.names) == [], "a full number or holder name sent to a CRM or BOSS"
    assert found(dead, used.numbers) == [], "a full number in the dead queue"
