"""The outbox relay against the real broker: what it publishes is what the row says, a row is
marked sent only once the broker confirmed it, and a row no queue takes stays unsent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from contracts import envelope as env
from contracts.topology import Names
from hub.faults import Faults
from hub.messaging.outbox_relay import OutboxRelay
from hub.outgoing import Target
from hub.store.sqlite import SqliteStore
from hub.store.unit_of_work import OutboxRow
from tests.support.hubrun import AMQP_URL
from tests.support.outbox import unsent_ids

WAIT_S = 10.0
Rig = tuple[SqliteStore, OutboxRelay, asyncio.Queue[AbstractIncomingMessage]]


def _now() -> datetime:
    return datetime.now(UTC)


def _row(routing_key: str) -> OutboxRow:
    return OutboxRow(message_id=uuid.uuid4().hex, target=Target.PARTY.value, routing_key=routing_key,
                     type="sign.result", correlation_id=uuid.uuid4().hex, body=b'{"ok": true}',
                     headers={"x-test": "kept"})  # fmt: skip


@pytest.fixture
async def relay_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A store, a relay on a confirming channel, and a queue bound to `bank.ICBC.#` of its own
    outbound exchange; the exchange and queue are deleted afterwards."""
    names = Names(prefix=f"t{uuid.uuid4().hex[:10]}")
    store = await SqliteStore.open(tmp_path / "hub.db")
    connection = await aio_pika.connect(AMQP_URL)
    received: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    try:
        setup = await connection.channel()
        exchange = await setup.declare_exchange(names.outbound_exchange, aio_pika.ExchangeType.TOPIC)
        queue = await setup.declare_queue(f"{names.prefix}.party.bank.ICBC", exclusive=True)
        await queue.bind(exchange, "bank.ICBC.#")
        await queue.consume(received.put, no_ack=True)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        relay = OutboxRelay(store, channel, names, _now, Faults())
        task = asyncio.create_task(relay.run())
        try:
            yield store, relay, received
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await exchange.delete()
    finally:
        await connection.close()
        await store.close()


async def _sent_within(store: SqliteStore, message_id: str, seconds: float) -> bool:
    """Whether the row leaves the unsent ones within `seconds` (polled: marks are written later)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if message_id not in await unsent_ids(store):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_handed_over_row_arrives_as_written_and_is_marked_sent(relay_rig: Rig) -> None:
    store, relay, received = relay_rig
    async with store.unit_of_work() as uow:
        rows = await uow.add_outbox([_row("bank.ICBC.sign.result")], _now())
    relay.hand_over(rows)

    message = await asyncio.wait_for(received.get(), WAIT_S)
    assert message.message_id == rows[0].message_id
    assert message.correlation_id == rows[0].correlation_id
    assert message.type == "sign.result"
    assert message.content_type == env.CONTENT_TYPE
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.app_id == "signhub"
    assert message.body == b'{"ok": true}'
    assert message.headers["x-test"] == "kept"
    assert message.headers[env.H_SCHEMA_VERSION] == env.SCHEMA_VERSION
    assert await _sent_within(store, rows[0].message_id, WAIT_S), "the confirmed row was never marked sent"


async def test_a_row_no_queue_takes_stays_unsent_and_the_others_go_on(relay_rig: Rig) -> None:
    store, relay, received = relay_rig
    async with store.unit_of_work() as uow:
        rows = await uow.add_outbox([_row("bank.NOBODY.sign.result"), _row("bank.ICBC.sign.result")], _now())
    relay.hand_over(rows)

    message = await asyncio.wait_for(received.get(), WAIT_S)
    assert message.message_id == rows[1].message_id
    assert await _sent_within(store, rows[1].message_id, WAIT_S), "the routable row was never marked sent"
    # The broker confirms a returned message too: only the return keeps its row unsent.
    assert rows[0].message_id in await unsent_ids(store)
    assert received.empty(), "the unroutable row reached a queue"
