"""One outside party's connection to the hub, written against the wire contract and plain aio-pika.

A party never declares anything: it consumes the queue the hub declared for it (manual ack,
repeats dropped by `message_id`) and publishes to the hub's inbound exchange with publisher
confirms and `mandatory`, so a message no queue took is an error, not a silent loss.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
import pydantic_core
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelNotFoundEntity

from contracts import catalogue
from contracts.common import Message
from contracts.envelope import CONTENT_TYPE, H_SCHEMA_VERSION, SCHEMA_VERSION
from contracts.routing import Party, routing_key
from contracts.topology import Names

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any], AbstractIncomingMessage], Awaitable[None]]
T = TypeVar("T")

_SEEN_LIMIT = 100_000
_TOPOLOGY_POLL_S = 0.5


class TopologyMissing(RuntimeError):
    """An exchange or queue the hub declares is not there (is the hub running with this prefix?)."""


class ContractViolation(ValueError):
    """The hub sent a message its contract does not allow."""


@dataclass(frozen=True, slots=True)
class HandlerError:
    """A message the party's handler failed on; it was acknowledged all the same."""

    message_id: str | None
    msg_type: str
    error: str


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
    ) -> None:
        self.party = party
        self.names = Names(prefix)
        self.errors: list[HandlerError] = []
        self.duplicates = 0
        self._connection = connection
        self._prefetch = prefetch
        self._user_id = user_id
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._handler: Handler | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consume_channel: AbstractChannel | None = None

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
    ) -> PartyClient:
        """Connect and find the inbound exchange, waiting up to `wait_s` for the hub to declare it."""
        connection = await aio_pika.connect_robust(
            url, client_properties={"connection_name": f"signhub simulator {party}"}
        )
        client = cls(connection, prefix, party, prefetch=prefetch, user_id=user_id)
        try:
            name = client.names.inbound_exchange
            client._publish_channel, client._exchange = await client._passive(
                lambda ch: ch.get_exchange(name, ensure=True), f"exchange {name!r}", wait_s
            )
        except BaseException:
            await connection.close()
            raise
        return client

    async def start(self, handler: Handler, *, wait_s: float = 0.0) -> None:
        """Consume the party's queue, waiting up to `wait_s` for the hub to declare it."""
        name = self.names.party_queue(self.party)
        channel, queue = await self._passive(
            lambda ch: ch.get_queue(name, ensure=True), f"queue {name!r}", wait_s
        )
        self._consume_channel, self._handler = channel, handler
        await channel.set_qos(prefetch_count=self._prefetch)
        await queue.consume(self._on_message)
        log.info("%s consuming %s", self.party, name)

    async def publish(
        self,
        msg_type: str,
        body: Message | Mapping[str, Any],
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Publish one message of the catalogue; returns its `message_id`."""
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
        await self._publish(message, routing_key(self.party, msg_type))
        log.info(
            "%s published %s message_id=%s correlation_id=%s",
            self.party,
            msg_type,
            message_id,
            correlation_id,
        )
        return message_id

    async def publish_raw(self, routing_key: str, body: bytes, **properties: Any) -> None:
        """Publish exactly what is given (for deliberately bad messages); persistent unless told."""
        properties.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
        await self._publish(aio_pika.Message(body, **properties), routing_key)
        log.info("%s published raw message on %s", self.party, routing_key)

    async def close(self) -> None:
        await self._connection.close()

    async def _publish(self, message: aio_pika.Message, key: str) -> None:
        if self._exchange is None:
            raise RuntimeError(f"{self.party}: not connected; use PartyClient.connect")
        # mandatory + on_return_raises: a message no queue took raises instead of being confirmed.
        await self._exchange.publish(message, routing_key=key, mandatory=True)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        msg_type = incoming.type or _type_of_key(incoming.routing_key or "")
        if self._is_repeat(incoming.message_id):
            self.duplicates += 1
            log.info("%s dropped repeated %s message_id=%s", self.party, msg_type, incoming.message_id)
            await incoming.ack()
            return
        try:
            self._check_contract(msg_type, incoming.body)
            assert self._handler is not None  # set by start() before consuming
            await self._handler(msg_type, _decode(incoming.body), incoming)
        except Exception as exc:
            # A simulator must never wedge its queue: record the failure and take the message.
            log.exception("%s failed on %s message_id=%s", self.party, msg_type, incoming.message_id)
            self.errors.append(HandlerError(incoming.message_id, msg_type, f"{type(exc).__name__}: {exc}"))
        await incoming.ack()

    def _check_contract(self, msg_type: str, raw: bytes) -> None:
        # An outside party trusts nothing: a hub message off the contract is recorded as an error.
        entry = catalogue.outbound(self.party.kind, msg_type)
        if entry is None:
            raise ContractViolation(f"the hub sent {msg_type!r}, not a type it sends to a {self.party.kind}")
        entry.model.model_validate_json(raw)

    def _is_repeat(self, message_id: str | None) -> bool:
        # Checked before the first await, so concurrent deliveries cannot both pass.
        if message_id is None:
            return False
        if message_id in self._seen:
            return True
        self._seen[message_id] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        return False

    async def _passive(
        self, lookup: Callable[[AbstractChannel], Awaitable[T]], what: str, wait_s: float
    ) -> tuple[AbstractChannel, T]:
        """Open a channel and look a hub-declared entity up in it, polling until `wait_s` is spent."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            # A failed passive declare closes its channel: each attempt gets a fresh one.
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
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


def _type_of_key(key: str) -> str:
    # `<kind>.<code>.<type>`: the type is everything after the second dot.
    return key.split(".", 2)[2] if key.count(".") >= 2 else key


async def _close_quietly(channel: AbstractChannel) -> None:
    try:
        await channel.close()
    except Exception:  # the broker already closed it; nothing left to release
        log.debug("channel already closed", exc_info=True)
