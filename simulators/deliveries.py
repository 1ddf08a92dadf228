"""How a simulated party takes a delivery: handled once, answered at least once, whatever the broker does.

- A `message_id` counts as seen (a later delivery of it is dropped as a repeat) only once its
  delivery is done with: handled and every answer confirmed, or failed for good.
- What a handler publishes is collected (an outbox per delivery) and sent once the handler
  returns, each message until the broker confirms it, under its own `message_id`.
- When the broker goes away before every answer was confirmed, the delivery is not acknowledged,
  so the broker delivers it again; then the answers still owed are sent, under the same
  `message_id`s (the contract lets a party send again what the broker did not confirm), and the
  handler is not run again: its effects on the simulator's state happened once.
- A handler's own failure (a bad body, a message off the contract, a bug) is recorded and the
  delivery acknowledged all the same: a simulator must never wedge its queue.

A delivery is handled in a task of its own, not in the channel's consumer task: a channel that
closes cancels its consumer tasks, and a handler cancelled halfway through has changed the state
without answering. So a redelivery can arrive while the first delivery is still being worked on;
it waits for it, and is then a repeat or the one that finishes the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import (
    AMQPChannelError,
    ChannelAccessRefused,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)

log = logging.getLogger(__name__)

_SEEN_LIMIT = 100_000
# Before a delivery that could not be done with goes back to the queue: a handler that fails at
# once on every try would otherwise be handed the same message again and again without pause.
_GIVE_BACK_PAUSE_S = 0.5


class BrokerUnavailable(ConnectionError):
    """The broker did not confirm a publish within the deadline: it is away, or unreachable."""


@dataclass(frozen=True, slots=True)
class HandlerError:
    """A message the party's handler failed on; it was acknowledged all the same."""

    message_id: str | None
    msg_type: str
    error: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish on the hub's inbound exchange."""

    message: aio_pika.Message
    routing_key: str


Handle = Callable[[AbstractIncomingMessage], Awaitable[None]]
Send = Callable[[Outgoing], Awaitable[None]]  # until confirmed; BrokerUnavailable when it gives up


def broker_trouble(exc: BaseException) -> bool:
    """Whether `exc` says the broker, or the way to it, is away for now, so that trying again later
    may work; not so for a refusal that would be the same on every try."""
    if isinstance(exc, PublishError):
        return False  # returned unroutable: no queue takes this routing key
    if isinstance(exc, ChannelAccessRefused | ChannelPreconditionFailed):
        return False  # a permission or a declaration that does not match
    if isinstance(exc, DeliveryError):
        return True  # nacked: the broker could not take it now (a queue without its leader)
    # AMQPChannelError: the channel closed under us, or the exchange is not there yet (a node
    # that came back empty, before the hub declared its topology again).
    return isinstance(exc, ConnectionError | AMQPChannelError | ChannelInvalidStateError | TimeoutError)


def type_of(incoming: AbstractIncomingMessage) -> str:
    """The message's type: its `type` property, else what its routing key `<kind>.<code>.<type>` says."""
    key = incoming.routing_key or ""
    return incoming.type or (key.split(".", 2)[2] if key.count(".") >= 2 else key)


@dataclass(eq=False)
class _Outbox:
    owner: Deliveries
    items: list[Outgoing] = field(default_factory=list)
    open: bool = True


# The outbox of the delivery being handled in this task. A context variable, so that the party's
# handlers publish as anywhere else (`client.publish`) and need not pass the delivery along.
_CURRENT: ContextVar[_Outbox | None] = ContextVar("signhub_simulator_outbox", default=None)


class Deliveries:
    """The deliveries of one party's queue: which were done with, which are being worked on, and
    what is still owed to those the broker will deliver again."""

    def __init__(
        self, party: str, handle: Handle, send: Send, *, give_back_pause_s: float = _GIVE_BACK_PAUSE_S
    ) -> None:
        self.errors: list[HandlerError] = []
        self.duplicates = 0
        self._party = party
        self._handle = handle
        self._send = send
        self._give_back_pause_s = give_back_pause_s
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._working: dict[str, asyncio.Future[bool]] = {}
        self._owed: dict[str, list[Outgoing]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def owed(self) -> int:
        """Deliveries whose answers wait for the broker to deliver them again."""
        return len(self._owed)

    def deliver(self, incoming: AbstractIncomingMessage) -> None:
        """Takes the delivery in a task of its own (see the module's docstring for why)."""
        task = asyncio.create_task(self.take(incoming), name=f"{self._party} {incoming.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def collect(self, outgoing: Outgoing) -> bool:
        """Keeps `outgoing` for the delivery handled in this task; False outside a handler (send it)."""
        box = _CURRENT.get()
        if box is None or box.owner is not self or not box.open:
            return False
        box.items.append(outgoing)
        return True

    async def take(self, incoming: AbstractIncomingMessage) -> None:
        message_id = incoming.message_id
        if not await self._claim(message_id):
            self.duplicates += 1
            log.info("%s dropped repeated %s message_id=%s", self._party, type_of(incoming), message_id)
            await self._settle(incoming, done=True)
            return
        done = False
        try:
            done = await self._work(incoming)
            await self._settle(incoming, done)
        finally:
            self._release(message_id, done)

    async def stop(self) -> None:
        """Stops the work in progress; its deliveries, never acknowledged, come again."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _claim(self, message_id: str | None) -> bool:
        """True: this delivery is the one to work on; False: a repeat of one done with. While another
        delivery of the same message_id is being worked on, waits: how that one ends decides."""
        if message_id is None:
            return True
        while (earlier := self._working.get(message_id)) is not None:
            await asyncio.wait([earlier])  # not `await earlier`: a cancelled waiter must not cancel it
        if message_id in self._seen:
            return False
        self._working[message_id] = asyncio.get_running_loop().create_future()
        return True

    def _release(self, message_id: str | None, done: bool) -> None:
        if message_id is None:
            return
        if done:
            self._seen[message_id] = None
            if len(self._seen) > _SEEN_LIMIT:
                self._seen.popitem(last=False)
        self._working.pop(message_id).set_result(done)

    async def _work(self, incoming: AbstractIncomingMessage) -> bool:
        """True once the delivery is done with; False when the broker went away before it was."""
        message_id = incoming.message_id
        owed = self._owed.pop(message_id, None) if message_id is not None else None
        if owed is not None:
            log.info(
                "%s sends the %d answers still owed to message_id=%s", self._party, len(owed), message_id
            )
        else:
            handled, owed = await self._run_handler(incoming)
            if not handled:
                return False
        return await self._send_all(incoming, owed)

    async def _run_handler(self, incoming: AbstractIncomingMessage) -> tuple[bool, list[Outgoing]]:
        """(False, []) when the broker went away under the handler itself, to be handled again;
        else (True, what it published), its own failure recorded."""
        box = _Outbox(self)
        token = _CURRENT.set(box)
        try:
            await self._handle(incoming)
        except Exception as exc:
            if broker_trouble(exc):
                log.warning("%s: the broker went away while handling %s message_id=%s (%r); it is "
                            "handled again when it comes again", self._party, type_of(incoming),
                            incoming.message_id, exc)  # fmt: skip
                return False, []
            self._record(incoming, exc)
        finally:
            box.open = False  # a task the handler started publishes on its own from now on
            _CURRENT.reset(token)
        return True, box.items

    async def _send_all(self, incoming: AbstractIncomingMessage, outbox: list[Outgoing]) -> bool:
        """Sends the outbox in order; when the broker goes away, what is left stays owed."""
        for i, outgoing in enumerate(outbox):
            try:
                await self._send(outgoing)
            except Exception as exc:
                if not broker_trouble(exc):
                    self._record(incoming, exc)
                    continue
                self._owe(incoming, outbox[i:], exc)
                return False
        return True

    def _owe(self, incoming: AbstractIncomingMessage, left: list[Outgoing], exc: Exception) -> None:
        message_id = incoming.message_id
        if message_id is not None:  # without one, a redelivery cannot be told apart: handled again
            self._owed[message_id] = left
        log.warning("%s: %d answers to %s message_id=%s not confirmed (%s); sent when it comes again",
                    self._party, len(left), type_of(incoming), message_id, exc)  # fmt: skip

    def _record(self, incoming: AbstractIncomingMessage, exc: Exception) -> None:
        msg_type = type_of(incoming)
        log.error("%s failed on %s message_id=%s", self._party, msg_type, incoming.message_id, exc_info=exc)
        self.errors.append(HandlerError(incoming.message_id, msg_type, f"{type(exc).__name__}: {exc}"))

    async def _settle(self, incoming: AbstractIncomingMessage, done: bool) -> None:
        """Acknowledges a delivery done with; gives one that is not back to the queue, to come again."""
        try:
            if done:
                await incoming.ack()
            else:
                await asyncio.sleep(self._give_back_pause_s)
                await incoming.reject(requeue=True)
        except Exception as exc:  # its channel closed with the connection: the broker delivers it again
            log.info("%s: delivery message_id=%s not settled (%r); the broker delivers it again",
                     self._party, incoming.message_id, exc)  # fmt: skip

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: taking a delivery failed", self._party, exc_info=task.exception())
