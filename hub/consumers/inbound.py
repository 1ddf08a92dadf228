"""The hub's consumers: thin, they turn a delivery into a `Delivery`, hand it to the intake, then
settle it as the intake says (ack only after the effect committed).

The inbound queue, which carries every party message, is consumed with aio-pika directly: a
FastStream subscriber that takes the message object resolves it as a dependency on a worker
thread, one thread hop per delivery, which the profile showed as a tenth of the event loop's
work (bench/README.md). The poison queue, which sees a message only when something is badly
wrong, keeps a FastStream subscriber.

Manual acknowledgement on purpose: a default that rejects a failing message would, without a
dead-letter route, lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from faststream.middlewares import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitMessage, RabbitQueue
from faststream.rabbit.schemas import Channel

from contracts.topology import Names
from hub.liveness import PartDown
from hub.messaging.edge import Delivery
from hub.messaging.seal import INTERNAL_HEADERS, Seal, Vouched
from hub.messaging.topology import HubNames
from hub.services.intake import Action, Intake

_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")  # fmt: skip
REQUEUE_PAUSE_S = 1.0
log = logging.getLogger("signhub.consumers")


def _plain(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def delivery_from(raw: AbstractIncomingMessage, names: Names, seal: Seal) -> Delivery:
    """A message as it reached the hub. A retried or replayed copy says its original routing key,
    user_id, attempt and replaying operator in headers under the hub's seal; any other message is
    a party's own publish, taken as the broker vouches for it, and whatever internal headers (or
    `x-death`) it carries are dropped unread: a party cannot name another sender through them."""
    headers = {k: _plain(v) for k, v in (raw.headers or {}).items() if k not in _BROKER_HEADERS}
    vouched = seal.read(headers, raw.message_id, raw.body)
    for internal in INTERNAL_HEADERS:
        headers.pop(internal, None)
    if vouched is None:
        vouched = Vouched(_as_published(raw, names), raw.user_id, raw.message_id)
    return Delivery(
        routing_key=vouched.routing_key, body=raw.body, message_id=vouched.message_id, msg_type=raw.type,
        content_type=raw.content_type, correlation_id=raw.correlation_id, user_id=vouched.user_id,
        headers=headers, attempt=vouched.attempt, replay_by=vouched.replay_by, redelivered=bool(raw.redelivered),
    )  # fmt: skip


def _as_published(raw: AbstractIncomingMessage, names: Names) -> str:
    """The routing key of an unsealed message: the one it came by, which the broker checked against
    its user's topic permission. One the broker dead-lettered to the poison queue came by the
    default exchange; its first hop is in `x-death`, which a party can forge, so that hop is
    believed only when the message's user_id (checked by the broker at publish) is its party's."""
    came_by = raw.routing_key or ""
    if raw.exchange == names.inbound_exchange or not raw.user_id:
        return came_by
    exchange, key = _first_hop(raw)
    party = raw.user_id.removeprefix(f"{names.prefix}.")
    own = raw.user_id != party and key.startswith(f"{party}.")
    return key if exchange == names.inbound_exchange and own else came_by


def _first_hop(raw: AbstractIncomingMessage) -> tuple[str, str]:
    """Exchange and routing key `x-death` says the message was first published with."""
    deaths = (raw.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict):
        first = deaths[-1]
        keys = first.get("routing-keys")
        key = keys[0] if isinstance(keys, list) and keys else ""
        return str(_plain(first.get("exchange", ""))), str(_plain(key))
    return "", ""


async def _settle(message: AbstractIncomingMessage, action: Action) -> None:
    if action is Action.ACK:
        await message.ack()
    else:
        await asyncio.sleep(REQUEUE_PAUSE_S)  # back off: the store or broker is failing right now
        await message.nack(requeue=True)


async def _raw_body(message: RabbitMessage) -> bytes:
    return message.body  # the intake parses; FastStream must not decode (a body may be garbage)


class GroupCommitter:
    """Collects deliveries while the previous group is being committed, then hands them to the
    intake as one group. The subscriber only queues a delivery and returns, so the broker keeps
    up to `prefetch` unacknowledged deliveries coming; each is acknowledged after its group's
    commit. Under light load a group is one message: no delivery ever waits for company."""

    def __init__(self, intake: Intake, names: Names, seal: Seal, max_group: int) -> None:
        self._intake = intake
        self._names = names
        self._seal = seal
        self._max_group = max_group
        self._queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._connection: AbstractRobustConnection | None = None
        self._queue_name = ""
        self._prefetch = 1
        self._tag = ""

    async def submit(self, message: AbstractIncomingMessage) -> None:
        self._queue.put_nowait(message)  # unbounded, but never above the channel's prefetch

    async def consume(self, connection: AbstractRobustConnection, queue_name: str, prefetch: int) -> None:
        """Starts taking deliveries from the hub's inbound queue, on a robust channel that restores
        the consumer after a reconnection. The queue is looked up with a passive declare: only a
        declared queue is restored with its channel; one taken with `get_queue(ensure=False)` was
        not, and after a broker restart the hub consumed nothing (issue 21)."""
        self._connection, self._queue_name, self._prefetch = connection, queue_name, prefetch
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(queue_name, passive=True)
        self._tag = await queue.consume(self.submit, no_ack=False)
        self._channel = channel

    async def check(self) -> None:
        """Working means: our channel is open and still holds our consumer, and the broker, asked on
        that same channel, counts a consumer on the queue."""
        channel = self._channel
        if channel is None or channel.is_closed:
            raise PartDown("its channel is closed")
        underlay = await channel.get_underlay_channel()
        if not isinstance(underlay, aiormq.Channel) or self._tag not in underlay.consumers:
            raise PartDown("its channel holds no consumer")
        declared = await underlay.queue_declare(self._queue_name, passive=True)
        if not declared.consumer_count:
            raise PartDown(f"the broker counts no consumer on {self._queue_name}")

    async def reconsume(self) -> None:
        """Consumes again on a new channel (the old one, closed first, is not restored). The
        deliveries it held go back to the queue and come again; the inbox makes them repeats."""
        assert self._connection is not None, "consume() first"
        old = self._channel
        self._channel = None
        if old is not None and not old.is_closed:
            with contextlib.suppress(Exception):
                await old.close()
        await self.consume(self._connection, self._queue_name, self._prefetch)

    async def close(self) -> None:
        """Stops the deliveries; the unacknowledged ones go back to the queue with the channel."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            deliveries = [delivery_from(m, self._names, self._seal) for m in group]
            try:
                actions = await self._intake.take_batch(deliveries)
            except Exception:
                log.exception("a group of %d deliveries failed; the broker will deliver them again", len(group))
                continue
            try:
                await self._settle_group(group, actions)
            except Exception:  # this loop is the hub's only consumer: it must outlive any one group
                log.exception("settling a group of %d failed; unsettled deliveries come again", len(group))
            # Lets the round that publishes this group's answers (hand_over) send them before the
            # next group is processed: without it, handing rows over made the per-hop p50 at half
            # the maximum rate worse (10-11 against 7-8 ms; bench/README.md, step 8).
            await asyncio.sleep(0)

    async def _settle_group(self, group: list[AbstractIncomingMessage], actions: list[Action]) -> None:
        # All acknowledged, on one channel: one `multiple` ack of the last settles the group (every
        # earlier delivery of the channel is settled by now: groups are committed in order).
        last = group[-1]
        channels = {_channel_of(m) for m in group}
        whole = all(a is Action.ACK for a in actions) and len(channels) == 1 and None not in channels
        pending = [(last, Action.ACK)] if whole else list(zip(group, actions, strict=True))
        for message, action in pending:
            try:
                if whole:
                    await message.ack(multiple=True)
                else:
                    await _settle(message, action)
            except (AMQPError, ChannelInvalidStateError, ConnectionError) as exc:
                # The channel went away (a broker restart): the delivery was not acknowledged,
                # so the broker delivers it again on the restored channel; its effect is
                # committed, and the inbox makes the redelivery a repeat with no second effect.
                log.warning("could not settle %s: %r; it will be redelivered", message.message_id, exc)


def _channel_of(message: AbstractIncomingMessage) -> object | None:
    """The channel a delivery came on, or None once that channel is closed (aio-pika raises then:
    unguarded, that ended the consumer loop at a broker restart, and with it all consuming)."""
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None


def register_consumers(broker: RabbitBroker, hub: HubNames, intake: Intake, prefetch: int, seal: Seal
                       ) -> GroupCommitter:  # fmt: skip
    """The poison queue's FastStream subscriber, and the inbound queue's committer, which starts
    consuming when the hub starts (`GroupCommitter.consume`)."""

    @broker.subscriber(RabbitQueue(hub.poison_queue, declare=False), ack_policy=AckPolicy.MANUAL,
                       decoder=_raw_body, channel=Channel(prefetch_count=1))  # fmt: skip
    async def hub_poison(body: bytes, message: RabbitMessage) -> None:
        delivery = delivery_from(message.raw_message, hub.names, seal)
        await _settle(message.raw_message, await intake.take(delivery, poisoned=True))

    return GroupCommitter(intake, hub.names, seal, max_group=prefetch)
