"""The hub's parts as the watch (`hub.liveness`) checks them, each by doing a small real thing.

The inbound consumer and the outbox relay check themselves (`GroupCommitter.check`,
`OutboxRelay.check`); this module has the others: the store, the broker as the console and
`/metrics` use it (a new channel each time), the poison queue's FastStream consumer, and the
hub's background tasks (timers, sweeper, reconciler, housekeeping), which must not have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from aio_pika.abc import AbstractRobustConnection

from hub.liveness import Part, PartDown
from hub.store.unit_of_work import Store


def store_part(store: Store) -> Part:
    async def check() -> None:
        await store.ping()

    return Part("store", check)


async def _consumers_on(connection: AbstractRobustConnection, queue: str) -> int:
    """A passive declare on a channel of its own (a failed one closes its channel), not restored."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True, robust=False)
        return int(declared.declaration_result.consumer_count or 0)
    finally:
        await channel.close()


def broker_part(connection: AbstractRobustConnection, queue: str) -> Part:
    """What the console's broker operations need: a new channel opens, and the hub's queue is there."""

    async def check() -> None:
        await _consumers_on(connection, queue)

    return Part("broker", check)


def poison_consumer_part(
    connection: AbstractRobustConnection, queue: str, ping: Callable[[], Awaitable[bool]]
) -> Part:
    """FastStream's connection answers, and the broker counts a consumer on the poison queue."""

    async def check() -> None:
        if not await ping():
            raise PartDown("FastStream's connection does not answer")
        if not await _consumers_on(connection, queue):
            raise PartDown(f"the broker counts no consumer on {queue}")

    return Part("poison consumer", check)


def tasks_part(tasks: Sequence[asyncio.Task[None]]) -> Part:
    """The hub's background loops run until it stops: one that ended has failed."""

    async def check() -> None:
        ended = [t.get_name() for t in tasks if t.done() and t.get_name() != "watch"]
        if ended:
            raise PartDown(f"background tasks ended: {', '.join(ended)}")

    return Part("background tasks", check)
