"""The broker side of the fuzzer: publishes inputs as a party would and collects what comes back
(dead-queue copies by message_id with their `x-signhub-reason`, `message.rejected` answers)."""

from __future__ import annotations

import asyncio
import json
import time

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from bench.fuzz_inputs import FuzzInput

_BATCH = 100


class Collector:
    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel, prefix: str) -> None:
        self.connection = connection
        self.channel = channel
        self.prefix = prefix
        self.dead: dict[str, str] = {}  # message_id -> x-signhub-reason
        self.nameless_dead = 0  # copies of inputs without a message_id (the hub names them D...)
        self.rejected: set[str] = set()  # message_ids answered with message.rejected
        self.other: int = 0

    @classmethod
    async def start(cls, url: str, prefix: str, banks: list[str], provinces: list[str]) -> Collector:
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=500)
        c = cls(connection, channel, prefix)
        parties = [f"bank.{b}" for b in banks] + [f"{k}.{p}" for p in provinces for k in ("crm", "boss")]
        for name in [f"{prefix}.party.{p}" for p in parties] + [f"{prefix}.dead", f"{prefix}.manual"]:
            queue = await channel.get_queue(name, ensure=True)
            await queue.consume(c._on_message)
        return c

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        reason = (message.headers or {}).get("x-signhub-reason")
        if message.routing_key and message.type == "message.rejected":
            try:
                self.rejected.add(str(json.loads(message.body).get("message_id", "")))
            except ValueError:
                self.other += 1
        elif reason is not None and (message.headers or {}).get("x-signhub-case-id") is None:
            reason = reason.decode() if isinstance(reason, bytes) else str(reason)
            mid = message.message_id or ""
            if mid.startswith("fz-"):
                self.dead[mid] = reason
            else:
                self.nameless_dead += 1
        else:
            self.other += 1
        await message.ack()

    async def settle(self, expected: tuple[set[str], int], timeout: float) -> None:
        """Until every expected dead copy came, then a little longer for what else is on its way."""
        named, nameless = expected
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if named <= self.dead.keys() and self.nameless_dead >= nameless:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)

    async def close(self) -> None:
        await self.connection.close()


async def publish_all(c: Collector, inputs: list[FuzzInput]) -> None:
    exchange = await c.channel.get_exchange(f"{c.prefix}.inbound")

    async def one(k: int, i: FuzzInput) -> None:
        message = aio_pika.Message(
            i.body, message_id=i.message_id(k), type=i.msg_type, content_type=i.content_type,
            headers=i.headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )  # fmt: skip
        await exchange.publish(message, routing_key=i.routing_key, mandatory=True)

    for start in range(0, len(inputs), _BATCH):
        await asyncio.gather(*(one(k, inputs[k]) for k in range(start, min(start + _BATCH, len(inputs)))))
