"""The hub's topology (hub/messaging/topology.py) on the real broker, under a prefix of its own.

Everything declared here is deleted at the end with `delete_topology`: quorum queues left behind
pile up as Raft groups and wedge the broker (STYLE.md, "Traps").
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import ChannelPreconditionFailed

from contracts.routing import Party, PartyKind
from contracts.topology import Names
from hub.messaging.topology import DELIVERY_LIMIT, HubNames, declare_topology, delete_topology

pytestmark = pytest.mark.broker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
WAIT_S = 10.0
RETRY_DELAYS_S = [0.2, 0.4]
PARTIES = [Party(PartyKind.BANK, "ICBC"), Party(PartyKind.BANK, "CCB"), Party(PartyKind.CRM, "GD"),
           Party(PartyKind.BOSS, "GD")]  # fmt: skip


@dataclass
class Collector:
    """Everything consumed from one queue, with a bounded wait for chosen message ids."""

    queue: str
    got: list[AbstractIncomingMessage] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        async with self.changed:
            self.got.append(message)
            self.changed.notify_all()

    def ids(self) -> set[str | None]:
        return {m.message_id for m in self.got}

    async def wait_for(self, *message_ids: str, timeout: float = WAIT_S) -> None:
        wanted = set(message_ids)
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: wanted <= self.ids()), timeout)
            except TimeoutError:
                raise AssertionError(f"{sorted(wanted - self.ids())} did not arrive in {self.queue} "
                                     f"within {timeout}s") from None  # fmt: skip

    def by_id(self, message_id: str) -> AbstractIncomingMessage:
        return next(m for m in self.got if m.message_id == message_id)


@dataclass
class Broker:
    hub: HubNames
    connection: AbstractRobustConnection
    channel: AbstractChannel

    @property
    def names(self) -> Names:
        return self.hub.names

    async def publish(self, exchange: str, routing_key: str, *, mandatory: bool = True) -> str:
        message_id = uuid.uuid4().hex
        target = await self.channel.get_exchange(exchange) if exchange else self.channel.default_exchange
        message = aio_pika.Message(
            b"{}", message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await target.publish(message, routing_key=routing_key, mandatory=mandatory)
        return message_id

    consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = field(default_factory=list)

    async def collect(self, queue_name: str) -> Collector:
        """Consumes `queue_name` until the end of the test (a leftover consumer would take turns)."""
        collector = Collector(queue_name)
        queue = await self.channel.get_queue(queue_name, ensure=True)
        self.consumers.append((queue, await queue.consume(collector.on_message)))
        return collector

    async def stop_collecting(self) -> None:
        while self.consumers:
            queue, tag = self.consumers.pop()
            await queue.cancel(tag)


@pytest.fixture(scope="module")
async def module_broker() -> AsyncIterator[Broker]:
    hub = HubNames(Names(prefix=f"ttopo-{uuid.uuid4().hex[:8]}"))
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_topology(channel, hub, PARTIES, RETRY_DELAYS_S)
        yield Broker(hub, connection, channel)
    finally:
        await connection.close()
        await delete_topology(AMQP_URL, hub, PARTIES, len(RETRY_DELAYS_S))


@pytest.fixture
async def broker(module_broker: Broker) -> AsyncIterator[Broker]:
    try:
        yield module_broker
    finally:
        await module_broker.stop_collecting()


async def test_declaring_the_topology_again_changes_nothing_and_keeps_queued_messages(broker: Broker) -> None:
    party_queue = broker.names.party_queue(PARTIES[0])
    waiting = await broker.publish(broker.names.outbound_exchange, f"{PARTIES[0]}.sign.response")

    channel = await broker.connection.channel()
    try:
        await declare_topology(channel, broker.hub, PARTIES, RETRY_DELAYS_S)
    finally:
        await channel.close()

    still_there = await broker.collect(party_queue)
    await still_there.wait_for(waiting)


@pytest.mark.parametrize(
    "routing_key",
    [
        "bank.ICBC.sign.request",
        "crm.GD.verify.response",
        "nobody.X.whatever",
        "bank.HSBC.sign.request",
        "junk",
    ],
)
async def test_anything_published_to_the_inbound_exchange_reaches_the_hub_inbound_queue(
    broker: Broker, routing_key: str
) -> None:
    inbound = await broker.collect(broker.hub.inbound_queue)

    message_id = await broker.publish(broker.names.inbound_exchange, routing_key)

    await inbound.wait_for(message_id)
    assert inbound.by_id(message_id).routing_key == routing_key, "the party's own routing key is kept"


async def test_each_party_queue_gets_only_the_messages_addressed_to_its_party(broker: Broker) -> None:
    collectors = {p: await broker.collect(broker.names.party_queue(p)) for p in PARTIES}
    sent: dict[Party, list[str]] = {p: [] for p in PARTIES}
    for party, msg_type in [(PARTIES[0], "sign.response"), (PARTIES[1], "sign.result"),
                            (PARTIES[2], "verify.request"), (PARTIES[3], "agreement.sync"),
                            (PARTIES[0], "message.rejected")]:  # fmt: skip
        sent[party].append(await broker.publish(broker.names.outbound_exchange, f"{party}.{msg_type}"))
    # Unroutable keys: another province's CRM, a bank's kind but a CRM's code, a bare party name.
    for key in ["crm.BJ.verify.request", "bank.GD.sign.result", "bank.ICBCX.sign.result"]:
        await broker.publish(broker.names.outbound_exchange, key, mandatory=False)
    # A last message to each queue: once it has arrived, everything published before it has too.
    last = {p: await broker.publish(broker.names.outbound_exchange, f"{p}.marker") for p in PARTIES}

    for party, collector in collectors.items():
        await collector.wait_for(*sent[party], last[party])
        assert collector.ids() == {*sent[party], last[party]}, f"{party} got messages of another party"
        assert all(m.routing_key.startswith(f"{party}.") for m in collector.got)  # type: ignore[union-attr]


async def test_a_message_in_the_first_retry_queue_comes_back_to_the_hub_inbound_queue_after_its_delay(
    broker: Broker,
) -> None:
    inbound = await broker.collect(broker.hub.inbound_queue)

    message_id = await broker.publish("", broker.hub.retry_queue(1))

    await inbound.wait_for(message_id, timeout=WAIT_S)
    deaths = inbound.by_id(message_id).headers.get("x-death")
    assert isinstance(deaths, list) and deaths, "a dead-lettered message carries x-death"
    death = deaths[0]
    assert isinstance(death, dict)
    assert (death["queue"], death["reason"]) == (broker.hub.retry_queue(1), "expired")


def _hub_queue_arguments(hub: HubNames, which: str) -> tuple[str, dict[str, Any]]:
    """A queue and the arguments CONTRACT.md and the topology's docstring promise for it."""
    quorum: dict[str, Any] = {"x-queue-type": "quorum"}

    def back_to(queue: str) -> dict[str, Any]:
        return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue,
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}  # fmt: skip

    return {
        "party": (hub.names.party_queue(PARTIES[2]), quorum),
        "manual": (hub.names.manual_queue, quorum),
        "dead": (hub.names.dead_queue, quorum),
        "inbound": (
            hub.inbound_queue,
            quorum | {"x-delivery-limit": DELIVERY_LIMIT} | back_to(hub.poison_queue),
        ),
        "retry1": (hub.retry_queue(1), quorum | {"x-message-ttl": 200} | back_to(hub.inbound_queue)),
        "retry2": (hub.retry_queue(2), quorum | {"x-message-ttl": 400} | back_to(hub.inbound_queue)),
    }[which]


@pytest.mark.parametrize("which", ["party", "manual", "dead", "inbound", "retry1", "retry2"])
async def test_the_hub_queues_are_quorum_queues_with_their_documented_arguments(
    broker: Broker, which: str
) -> None:
    queue, arguments = _hub_queue_arguments(broker.hub, which)
    channel = await broker.connection.channel()
    try:
        # The broker accepts a re-declaration only with equivalent arguments ...
        await channel.declare_queue(queue, durable=True, arguments=arguments)
        # ... and names the type a queue really has when asked for another one.
        with pytest.raises(ChannelPreconditionFailed, match=r"x-queue-type.*quorum"):
            await channel.declare_queue(
                queue, durable=True, arguments=arguments | {"x-queue-type": "classic"}
            )
    finally:
        if not channel.is_closed:
            await channel.close()
