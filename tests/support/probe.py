"""A test party written from CONTRACT.md alone: plain aio-pika, no hub imports.

It consumes the party queues the hub declared (and the manual and dead queues) into in-memory
inboxes, publishes to the inbound exchange as a party would, and waits for messages with a bound,
failing with a message that says what did not arrive.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection


@dataclass
class Received:
    queue: str
    routing_key: str
    type: str | None
    message_id: str | None
    correlation_id: str | None
    headers: dict[str, Any]
    body: dict[str, Any]
    raw: bytes
    properties: dict[str, Any] = field(default_factory=dict)


Match = Callable[[Received], bool]


class Probe:
    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel, prefix: str) -> None:
        self._connection = connection
        self._channel = channel
        self.prefix = prefix
        self.received: list[Received] = []
        self._changed = asyncio.Condition()

    @classmethod
    async def connect(
        cls, url: str, prefix: str, queues: list[str], *, ssl_context: ssl.SSLContext | None = None
    ) -> Probe:
        """`ssl_context`: for an amqps:// URL, whom to trust and which client certificate to show."""
        connection = await aio_pika.connect_robust(url, ssl_context=ssl_context)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=200)
        probe = cls(connection, channel, prefix)
        for name in queues:
            queue = await channel.get_queue(name, ensure=True)
            await queue.consume(probe._on_message)
        return probe

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
        except (ValueError, RecursionError):  # RecursionError: a dead copy of a body nested too deep
            body = {"_raw": message.body.decode("utf-8", errors="replace")}
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (message.headers or {}).items()}
        got = Received(
            queue=message.routing_key or "", routing_key=message.routing_key or "", type=message.type,
            message_id=message.message_id, correlation_id=message.correlation_id, headers=headers,
            body=body, raw=message.body, properties={"delivery_mode": message.delivery_mode},
        )  # fmt: skip
        await message.ack()
        async with self._changed:
            self.received.append(got)
            self._changed.notify_all()

    async def publish(
        self, party: str, msg_type: str, body: dict[str, Any] | bytes, *, message_id: str | None = None,
        msg_type_property: str | None = "same", headers: dict[str, Any] | None = None,
        content_type: str | None = "application/json", routing_key: str | None = None,
        correlation_id: str | None = None,
    ) -> str:  # fmt: skip
        """Publishes as `party` (e.g. "bank.ICBC") to the inbound exchange; returns the message_id."""
        mid = message_id or _message_id()
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        message = aio_pika.Message(
            raw, message_id=mid, correlation_id=correlation_id, content_type=content_type,
            type=msg_type if msg_type_property == "same" else msg_type_property,
            headers={"x-schema-version": 1} if headers is None else headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )  # fmt: skip
        exchange = await self._channel.get_exchange(f"{self.prefix}.inbound")
        await exchange.publish(message, routing_key=routing_key or f"{party}.{msg_type}", mandatory=True)
        return mid

    async def expect(self, what: str, match: Match, timeout: float = 30.0) -> Received:
        """The first received message matching `match`; fails naming `what` after `timeout` s."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._first(match) is not None), timeout
                )
            except TimeoutError:
                seen = [f"{r.routing_key} {r.type} {r.body}" for r in self.received[-8:]]
                raise AssertionError(f"{what} did not arrive within {timeout}s; last seen: {seen}") from None
            found = self._first(match)
            assert found is not None
            return found

    async def expect_count(
        self, what: str, match: Match, count: int, timeout: float = 30.0
    ) -> list[Received]:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.all(match)) >= count), timeout)
            except TimeoutError:
                raise AssertionError(f"{count} x {what} did not arrive within {timeout}s; "
                                     f"got {len(self.all(match))}") from None  # fmt: skip
            return self.all(match)

    def all(self, match: Match) -> list[Received]:
        return [r for r in self.received if match(r)]

    def _first(self, match: Match) -> Received | None:
        return next((r for r in self.received if match(r)), None)

    async def close(self) -> None:
        await self._connection.close()


def to(party: str, msg_type: str, **fields: Any) -> Match:
    """Matches a message addressed to `party` of `msg_type` whose body has the given fields."""

    def match(r: Received) -> bool:
        return r.routing_key == f"{party}.{msg_type}" and all(r.body.get(k) == v for k, v in fields.items())

    return match


def in_queue(queue: str, **headers: Any) -> Match:
    def match(r: Received) -> bool:
        return r.queue == queue and all(r.headers.get(k) == v for k, v in headers.items())

    return match


def _message_id() -> str:
    """A fresh message_id whose digits never run to 12: the hub masks such a run as a card number
    in the dead copy's message_id (hub.protection), and a plain uuid4 hex has one in about 3% of ids
    (tests that looked for their copy then timed out)."""
    h = uuid.uuid4().hex
    return "-".join(h[i : i + 8] for i in range(0, 32, 8))
