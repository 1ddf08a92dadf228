"""The hub's side of a broker that tests restart: what the hub would declare, send and see.

For simulator tests on a private node (`bench.broker_node`). It declares the two topic exchanges
and the party queues (durable, as the hub does, so they outlive a restart of the node), sends what
the hub would send, and watches what the parties publish through a durable queue bound to the
inbound exchange with `#`. Its own connection is robust too: a send is tried until the broker
confirms it, bounded. `forget_topology` and `declare_topology` stand for a node that lost its
definitions and a hub that declared them again. `delete` removes everything it declared.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from contracts.routing import Party
from contracts.topology import Names
from simulators.recording import Received, Recorder

SEND_WITHIN_S = 30.0  # a send waits this long at most for the restarted broker to confirm it


@dataclass
class RestartableHub:
    names: Names
    parties: list[Party]
    connection: AbstractRobustConnection
    channel: AbstractRobustChannel
    outbound: AbstractExchange
    seen: Recorder

    @property
    def observer(self) -> str:
        return f"{self.names.prefix}.observer"

    async def send(
        self, party: Party, msg_type: str, body: dict[str, Any], message_id: str | None = None
    ) -> str:
        """Publishes as the hub would; tried again until confirmed (the broker may be coming back)."""
        message_id = message_id or uuid.uuid4().hex
        deadline = asyncio.get_running_loop().time() + SEND_WITHIN_S
        while True:
            try:
                await asyncio.wait_for(self._send_once(party, msg_type, body, message_id), 5.0)
                return message_id
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def answer_to(self, message_id: str, what: str, timeout: float) -> Received:
        """The first message a party published in answer to the hub's `message_id`."""
        return await self.published(lambda r: r.correlation_id == message_id, what, timeout)

    async def published(self, match: Callable[[Received], bool], what: str, timeout: float) -> Received:
        await self.seen.wait_until(lambda: any(match(r) for r in self.seen.received), what, timeout)
        return next(r for r in self.seen.received if match(r))

    async def consumers_on(self, party: Party) -> int:
        """How many consumers the broker counts on the party's queue (a channel of its own: a failed
        passive declare closes its channel)."""
        channel = await self.connection.channel()
        try:
            queue = await channel.declare_queue(self.names.party_queue(party), passive=True, robust=False)
            return int(queue.declaration_result.consumer_count or 0)
        finally:
            await channel.close()

    async def declare_topology(self) -> None:
        """What the hub declares: the exchanges, the party queues bound to the outbound one; and the
        observer's queue, bound to the inbound one."""
        inbound = await self.channel.declare_exchange(self.names.inbound_exchange, "topic", durable=True)
        self.outbound = await self.channel.declare_exchange(
            self.names.outbound_exchange, "topic", durable=True
        )
        for party in self.parties:
            queue = await self.channel.declare_queue(
                self.names.party_queue(party), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(self.outbound, Names.party_binding(party))
        observer = await self.channel.declare_queue(self.observer, durable=True)
        await observer.bind(inbound, "#")

    async def forget_topology(self) -> None:
        """The party queues and both exchanges disappear (the observer's queue stays, unbound)."""
        for name in [self.names.party_queue(p) for p in self.parties]:
            await self.channel.queue_delete(name)
        for name in (self.names.inbound_exchange, self.names.outbound_exchange):
            await self.channel.exchange_delete(name)

    async def delete(self) -> None:
        await asyncio.wait_for(self.connection.ready(), SEND_WITHIN_S)  # the broker may be coming back
        channel = await self.connection.channel()  # a fresh one: the test's may have been closed
        for name in [*(self.names.party_queue(p) for p in self.parties), self.observer]:
            await channel.queue_delete(name)
        for name in (self.names.inbound_exchange, self.names.outbound_exchange):
            await channel.exchange_delete(name)
        await self.connection.close()

    async def _send_once(self, party: Party, msg_type: str, body: dict[str, Any], message_id: str) -> None:
        message = aio_pika.Message(
            json.dumps(body).encode(),
            message_id=message_id,
            type=msg_type,
            content_type="application/json",
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"x-schema-version": 1},
        )
        await self.outbound.publish(message, routing_key=f"{party}.{msg_type}", mandatory=True)


async def declare_hub(url: str, parties: list[Party]) -> RestartableHub:
    """Declares the topology of a hub of a prefix of its own, for `parties`, and starts watching."""
    names = Names(f"simrestart-{uuid.uuid4().hex[:8]}")
    connection = await aio_pika.connect_robust(url, reconnect_interval=0.5)
    channel = connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel
    hub = RestartableHub(
        names, parties, connection, channel, channel.default_exchange, Recorder("the fake hub")
    )
    await hub.declare_topology()
    observer = await channel.declare_queue(hub.observer, passive=True)
    await observer.consume(_observe_into(hub.seen))
    return hub


def _observe_into(seen: Recorder) -> Callable[[AbstractIncomingMessage], Any]:
    async def observe(message: AbstractIncomingMessage) -> None:
        async with message.process():
            await seen.add(Received.of(message.type or "", json.loads(message.body), message))

    return observe
