"""One outside party's connection to the hub, written against the wire contract and plain aio-pika.

A party never declares anything: it consumes the queue the hub declared for it (manual ack,
repeats dropped by `message_id`; `simulators.deliveries` says how a delivery is taken) and
publishes to the hub's inbound exchange with publisher confirms and `mandatory`, so a message no
queue took is an error, not a silent loss. A publish the broker did not confirm (it went away) is
sent again, unchanged, until it is, for at most `publish_deadline_s`. `check` and `repair` are
what the watch of `signhub simulate` (`simulators.runner`) runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
import pydantic_core
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelNotFoundEntity

from contracts import catalogue
from contracts.common import Message
from contracts.envelope import CONTENT_TYPE, H_SCHEMA_VERSION, SCHEMA_VERSION
from contracts.routing import Party, routing_key
from contracts.topology import Names
from simulators import party_checks
from simulators.deliveries import (
    BrokerUnavailable,
    Deliveries,
    HandlerError,
    Outgoing,
    broker_trouble,
    type_of,
)

__all__ = ["ContractViolation", "HandlerError", "PartyClient", "TopologyMissing"]

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any], AbstractIncomingMessage], Awaitable[None]]
T = TypeVar("T")

_TOPOLOGY_POLL_S = 0.5
PUBLISH_DEADLINE_S = 120.0  # how long a publish is tried again before the caller is told
_PUBLISH_TRY_S = 5.0  # one try: a robust channel waits for its connection without limit
_PUBLISH_PAUSE_S = 0.5  # between tries


class TopologyMissing(RuntimeError):
    """An exchange or queue the hub declares is not there (is the hub running with this prefix?)."""


class ContractViolation(ValueError):
    """The hub sent a message its contract does not allow."""


class PartyClient:
    """The connection of one party (`bank.ICBC`, `crm.GD`, ...) to one hub prefix."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        prefix: str,
        party: Party,
        *,
        prefetch: int = 64,
        user_id: str | None = None,
        publish_deadline_s: float = PUBLISH_DEADLINE_S,
    ) -> None:
        self.party = party
        self.names = Names(prefix)
        self.publish_retries = 0
        self._connection = connection
        self._prefetch = prefetch
        self._user_id = user_id
        self._publish_deadline_s = publish_deadline_s
        self._deliveries = Deliveries(str(party), self._handle, self._publish)
        self._handler: Handler | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consume_channel: AbstractRobustChannel | None = None
        self._consumer_tag = ""

    @classmethod
    async def connect(
        cls,
        url: str,
        prefix: str,
        party: Party,
        *,
        prefetch: int = 64,
        user_id: str | None = None,
        wait_s: float = 0.0,
        reconnect_s: float = 5.0,
        publish_deadline_s: float = PUBLISH_DEADLINE_S,
    ) -> PartyClient:
        """Connect and find the inbound exchange, waiting up to `wait_s` for the hub to declare it;
        a lost connection is tried again every `reconnect_s` (aio-pika's default)."""
        connection = await aio_pika.connect_robust(
            url,
            client_properties={"connection_name": f"signhub simulator {party}"},
            reconnect_interval=reconnect_s,
        )
        client = cls(connection, prefix, party, prefetch=prefetch, user_id=user_id,
                     publish_deadline_s=publish_deadline_s)  # fmt: skip
        try:
            await client._open_publisher(wait_s)
        except BaseException:
            await connection.close()
            raise
        return client

    @property
    def errors(self) -> list[HandlerError]:
        """Messages the handler failed on (acknowledged all the same)."""
        return self._deliveries.errors

    @property
    def duplicates(self) -> int:
        """Deliveries dropped as repeats of a message_id already done with."""
        return self._deliveries.duplicates

    @property
    def owed(self) -> int:
        """Deliveries whose answers the broker did not confirm: sent when it delivers them again."""
        return self._deliveries.owed

    async def start(self, handler: Handler, *, wait_s: float = 0.0) -> None:
        """Consume the party's queue, waiting up to `wait_s` for the hub to declare it."""
        self._handler = handler
        await self._consume(wait_s)
        log.info("%s consuming %s", self.party, self.names.party_queue(self.party))

    async def publish(
        self,
        msg_type: str,
        body: Message | Mapping[str, Any],
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Publish one message of the catalogue; returns its `message_id`. Inside a handler it is
        sent once the handler returns (`simulators.deliveries`), elsewhere now."""
        message_id = message_id or uuid.uuid4().hex
        message = aio_pika.Message(
            _encode(body),
            message_id=message_id,
            correlation_id=correlation_id,
            type=msg_type,
            content_type=CONTENT_TYPE,
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={H_SCHEMA_VERSION: SCHEMA_VERSION},
            user_id=self._user_id,
        )
        await self._send(Outgoing(message, routing_key(self.party, msg_type)))
        return message_id

    async def publish_raw(self, routing_key: str, body: bytes, **properties: Any) -> None:
        """Publish exactly what is given (for deliberately bad messages); persistent unless told."""
        properties.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
        await self._send(Outgoing(aio_pika.Message(body, **properties), routing_key))

    async def check(self) -> None:
        """Returns when the party works, checked by doing; raises `PartDown` saying what does not:
        the consume channel is open and holds our consumer, and the broker, asked on that channel,
        counts a consumer on our queue; the publish channel answers a passive declare of the
        hub's inbound exchange."""
        await self._check_consumer()
        await self._check_publisher()

    async def _check_consumer(self) -> None:
        queue = self.names.party_queue(self.party)
        await party_checks.consumer_works(self._consume_channel, self._consumer_tag, queue)

    async def _check_publisher(self) -> None:
        await party_checks.exchange_answers(self._publish_channel, self.names.inbound_exchange)

    async def repair(self) -> None:
        """Opens a new channel where the robust connection did not restore ours: aio-pika does not
        reopen a channel the broker closed while the connection stayed up (a passive declare of
        a queue or exchange that was not there for a moment), nor always a consumer it lost."""
        party_checks.connection_is_up(self._connection)
        if not await party_checks.works(self._consume_channel, self._check_consumer):
            await _close_quietly(self._consume_channel)
            await self._consume(0.0)
            log.warning("%s consumes again on a new channel", self.party)
        if not await party_checks.works(self._publish_channel, self._check_publisher):
            await _close_quietly(self._publish_channel)
            await self._open_publisher(0.0)
            log.warning("%s publishes on a new channel", self.party)

    async def close(self) -> None:
        await self._deliveries.stop()
        await self._connection.close()

    async def _open_publisher(self, wait_s: float) -> None:
        name = self.names.inbound_exchange
        self._publish_channel, self._exchange = await self._passive(
            lambda ch: ch.get_exchange(name, ensure=True), f"exchange {name!r}", wait_s
        )

    async def _consume(self, wait_s: float) -> None:
        # A passive declare (ensure=True): only a declared queue is restored with its channel after
        # a reconnection; one taken with `get_queue(ensure=False)` is not (issue 21).
        name = self.names.party_queue(self.party)
        channel, queue = await self._passive(
            lambda ch: ch.get_queue(name, ensure=True), f"queue {name!r}", wait_s
        )
        await channel.set_qos(prefetch_count=self._prefetch)
        self._consumer_tag = await queue.consume(self._on_message)
        self._consume_channel = channel

    async def _send(self, outgoing: Outgoing) -> None:
        if not self._deliveries.collect(outgoing):
            await self._publish(outgoing)

    async def _publish(self, outgoing: Outgoing) -> None:
        """Publishes until the broker confirms, each try bounded, under the same message_id; raises
        `BrokerUnavailable` after `publish_deadline_s`, at once what would fail on any try."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._publish_deadline_s
        while True:
            try:
                await self._publish_once(outgoing, min(_PUBLISH_TRY_S, max(give_up_at - loop.time(), 0.1)))
                break
            except Exception as exc:
                if not broker_trouble(exc):
                    raise
                if loop.time() >= give_up_at:
                    raise BrokerUnavailable(f"{self.party}: {outgoing.message.type} message_id="
                                            f"{outgoing.message.message_id} not confirmed within "
                                            f"{self._publish_deadline_s:g} s: {exc!r}") from exc  # fmt: skip
                self.publish_retries += 1
                log.debug("%s publish not confirmed (%r); trying again", self.party, exc)
                await asyncio.sleep(_PUBLISH_PAUSE_S)
        message = outgoing.message
        log.info("%s published %s message_id=%s correlation_id=%s",
                 self.party, message.type, message.message_id, message.correlation_id)  # fmt: skip

    async def _publish_once(self, outgoing: Outgoing, timeout: float) -> None:
        exchange = self._exchange  # read on each try: `repair` may have replaced it
        if exchange is None:
            raise RuntimeError(f"{self.party}: not connected; use PartyClient.connect")
        try:
            async with asyncio.timeout(timeout):
                # mandatory + on_return_raises: a message no queue took raises instead of being confirmed.
                await exchange.publish(outgoing.message, routing_key=outgoing.routing_key, mandatory=True)
        except asyncio.CancelledError:
            # aiormq fails a pending confirm with CancelledError when its channel is closed without
            # a reason: the broker went away, unless this task itself is being cancelled.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            raise ConnectionError("the channel closed before the broker confirmed") from None

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        self._deliveries.deliver(incoming)

    async def _handle(self, incoming: AbstractIncomingMessage) -> None:
        msg_type = type_of(incoming)
        self._check_contract(msg_type, incoming.body)
        assert self._handler is not None  # set by start() before consuming
        await self._handler(msg_type, _decode(incoming.body), incoming)

    def _check_contract(self, msg_type: str, raw: bytes) -> None:
        # An outside party trusts nothing: a hub message off the contract is recorded as an error.
        entry = catalogue.outbound(self.party.kind, msg_type)
        if entry is None:
            raise ContractViolation(f"the hub sent {msg_type!r}, not a type it sends to a {self.party.kind}")
        entry.model.model_validate_json(raw)

    async def _passive(
        self, lookup: Callable[[AbstractRobustChannel], Awaitable[T]], what: str, wait_s: float
    ) -> tuple[AbstractRobustChannel, T]:
        """Open a channel and look a hub-declared entity up in it, polling until `wait_s` is spent."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            # A failed passive declare closes its channel: each attempt gets a fresh one.
            channel = self._connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel  # opens it
            try:
                return channel, await lookup(channel)
            except ChannelNotFoundEntity as exc:
                await _close_quietly(channel)
                if asyncio.get_running_loop().time() >= deadline:
                    raise TopologyMissing(
                        f"{self.party}: {what} does not exist; the hub declares it when it starts "
                        f"with prefix {self.names.prefix!r}"
                    ) from exc
            await asyncio.sleep(_TOPOLOGY_POLL_S)


def _encode(body: Message | Mapping[str, Any]) -> bytes:
    if isinstance(body, Message):
        return body.model_dump_json(exclude_none=True).encode("utf-8")
    return pydantic_core.to_json(dict(body))


def _decode(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw.decode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError(f"body is a JSON {type(body).__name__}, not an object")
    return body


async def _close_quietly(channel: AbstractChannel | None) -> None:
    if channel is None:
        return
    try:
        await channel.close()
    except Exception:  # the broker already closed it; nothing left to release
        log.debug("channel already closed", exc_info=True)
