"""Whether a simulated party's broker work works, found by doing it: what `PartyClient.check` and
`PartyClient.repair` run for the watch of `signhub simulate`.

A robust connection that reconnected proves nothing about the channels on it: each check performs
a small real operation on the party's own channel. `hub.liveness` is the one hub module besides
`hub.segments` that the simulators import: it depends on nothing of the hub (prometheus_client
only), and the hub and the simulators then say "does not work" the same way.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustChannel, AbstractRobustConnection

from hub.liveness import Check, PartDown

# How long `works` gives aio-pika to finish restoring a channel after its connection came back.
_RESTORE_WAIT_S = 2.0


async def consumer_works(channel: AbstractChannel | None, consumer_tag: str, queue: str) -> None:
    """The channel is open and holds the consumer, and the broker, asked on that same channel, counts
    a consumer on the queue. (A queue that is not there makes the broker close the channel: its
    consumer is gone with it anyway, and `repair` consumes again once the queue is back.)"""
    underlay = await _underlay(channel, "consume")
    if consumer_tag not in underlay.consumers:
        raise PartDown("its consume channel holds no consumer")
    declared = await underlay.queue_declare(queue, passive=True)
    if not declared.consumer_count:
        raise PartDown(f"the broker counts no consumer on {queue}")


async def exchange_answers(channel: AbstractChannel | None, exchange: str) -> None:
    """The publish channel answers a round trip: a passive declare of the exchange it publishes to."""
    underlay = await _underlay(channel, "publish")
    await underlay.exchange_declare(exchange, passive=True)


def connection_is_up(connection: AbstractRobustConnection) -> None:
    """A repair waits for the connection: while it is down, aio-pika reconnects by itself."""
    if connection.is_closed or not connection.connected.is_set():
        raise PartDown("the connection is down; aio-pika connects again by itself")


async def works(channel: AbstractRobustChannel | None, check: Check) -> bool:
    """Whether `check` passes, after giving aio-pika a moment to restore the channel: a robust
    connection reports itself connected before its channels are open again."""
    if channel is None:
        return False
    if channel.is_closed:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.ready(), _RESTORE_WAIT_S)
    try:
        await check()
    except Exception:
        return False
    return True


async def _underlay(channel: AbstractChannel | None, role: str) -> aiormq.Channel:
    # Tested before asking for the underlay: a robust channel's `get_underlay_channel` waits for its
    # connection without limit.
    if channel is None or channel.is_closed:
        raise PartDown(f"its {role} channel is closed")
    underlay = await channel.get_underlay_channel()
    if not isinstance(underlay, aiormq.Channel):  # pragma: no cover - aio-pika always gives one
        raise TypeError(f"unexpected channel {underlay!r}")
    return underlay
