"""Declares the whole topology, idempotently, at every start (CONTRACT.md "Transport").

Beyond what parties see, the hub owns: its inbound queue (bound to the inbound exchange with `#`
so that every message reaches the hub and an unknown type is refused, not dropped by the broker),
delayed-retry queues (TTL, then dead-lettered back to the inbound queue: RabbitMQ 3.10 has no
delayed-message plugin) and a poison queue for messages that crashed the hub too often.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, ExchangeType

from contracts.routing import Party
from contracts.topology import Names

# 3.10 quorum queues have no delivery limit unless set; this one stops a message that kills the
# hub every time from looping forever: past it the message is dead-lettered to the poison queue.
DELIVERY_LIMIT = 20
_QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}


@dataclass(frozen=True, slots=True)
class HubNames:
    names: Names

    @property
    def inbound_queue(self) -> str:
        return f"{self.names.prefix}.hub.inbound"

    @property
    def poison_queue(self) -> str:
        return f"{self.names.prefix}.hub.poison"

    def retry_queue(self, attempt: int) -> str:
        return f"{self.names.prefix}.hub.retry.{attempt}"


def _at_least_once_dlx(routing_key: str) -> dict[str, Any]:
    # Dead-lettering is at-most-once unless the source quorum queue says otherwise.
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": routing_key,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_topology(
    channel: AbstractChannel, hub: HubNames, parties: list[Party], retry_delays_s: list[float]
) -> None:
    names = hub.names
    inbound = await channel.declare_exchange(names.inbound_exchange, ExchangeType.TOPIC, durable=True)
    outbound = await channel.declare_exchange(names.outbound_exchange, ExchangeType.TOPIC, durable=True)
    await channel.declare_queue(hub.poison_queue, durable=True)
    hub_queue = await channel.declare_queue(
        hub.inbound_queue, durable=True,
        arguments=_QUORUM | {"x-delivery-limit": DELIVERY_LIMIT} | _at_least_once_dlx(hub.poison_queue),
    )  # fmt: skip
    await hub_queue.bind(inbound, "#")
    for attempt, delay in enumerate(retry_delays_s, start=1):
        args = _QUORUM | {"x-message-ttl": int(delay * 1000)} | _at_least_once_dlx(hub.inbound_queue)
        await channel.declare_queue(hub.retry_queue(attempt), durable=True, arguments=args)
    for name in (names.manual_queue, names.dead_queue):
        await channel.declare_queue(name, durable=True, arguments=_QUORUM)
    for party in parties:
        queue = await channel.declare_queue(names.party_queue(party), durable=True, arguments=_QUORUM)
        await queue.bind(outbound, names.party_binding(party))


async def delete_topology(url: str, hub: HubNames, parties: list[Party], retries: int) -> None:
    """Removes everything `declare_topology` made: for test runs and the demo's private prefix."""
    names = hub.names
    queues = [hub.inbound_queue, hub.poison_queue, names.manual_queue, names.dead_queue]
    queues += [hub.retry_queue(a) for a in range(1, retries + 1)]
    queues += [names.party_queue(p) for p in parties]
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (names.inbound_exchange, names.outbound_exchange):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()
