"""Scripted banks and CRMs that answer at once, for load through real hub processes.

Plain aio-pika, written from the contract: the CRM approves every number (prepaid terms); a bank
confirms a request once every request of its number is approved, so a number asked for by two
banks gets two confirmations.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from tests.support.data import confirmed, sign_request, verify_ok_prepaid


class AutoParties:
    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel, prefix: str) -> None:
        self._connection = connection
        self._channel = channel
        self._prefix = prefix
        self.requests: dict[str, dict[str, Any]] = {}  # request_id -> sign.request body
        self.bank_of: dict[str, str] = {}
        self.by_phone: dict[str, list[str]] = defaultdict(list)
        self.approved: set[str] = set()
        self.results: dict[str, list[tuple[str | None, dict[str, Any]]]] = defaultdict(list)
        self.answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._confirmed: set[str] = set()
        self._changed = asyncio.Condition()

    @classmethod
    async def start(cls, url: str, prefix: str, banks: list[str], provinces: list[str]) -> AutoParties:
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=500)
        parties = cls(connection, channel, prefix)
        for name in [f"bank.{b}" for b in banks] + [f"crm.{p}" for p in provinces]:
            queue = await channel.get_queue(f"{prefix}.party.{name}", ensure=True)
            await queue.consume(parties._on_message)
        return parties

    async def _publish(
        self, routing_key: str, body: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        exchange = await self._channel.get_exchange(f"{self._prefix}.inbound")
        message = aio_pika.Message(
            json.dumps(body).encode(), message_id=uuid.uuid4().hex, type=routing_key.split(".", 2)[2],
            content_type="application/json", correlation_id=correlation_id, headers={"x-schema-version": 1},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )  # fmt: skip
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    async def sign(self, bank: str, phone: str) -> str:
        request = sign_request(phone)
        rid = str(request["request_id"])
        self.requests[rid], self.bank_of[rid] = request, bank
        self.by_phone[phone].append(rid)
        await self._publish(f"bank.{bank}.sign.request", request)
        return rid

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        _kind, code, msg_type = (message.routing_key or "").split(".", 2)
        if msg_type == "verify.request":
            await self._publish(
                f"crm.{code}.verify.response", verify_ok_prepaid(body["verify_id"]), message.message_id
            )
        elif msg_type == "sign.response":
            self.answers[body["request_id"]].append(body)
            if body["result"] == "APPROVED":
                self.approved.add(body["request_id"])
                await self._confirm_ready(self.requests[body["request_id"]]["phone"])
        elif msg_type == "sign.result":
            self.results[body["request_id"]].append((message.message_id, body))
        await message.ack()
        async with self._changed:
            self._changed.notify_all()

    async def _confirm_ready(self, phone: str) -> None:
        rids = self.by_phone[phone]
        if all(r in self.approved for r in rids):
            for rid in rids:
                if rid not in self._confirmed:
                    self._confirmed.add(rid)
                    await self._publish(
                        f"bank.{self.bank_of[rid]}.sign.confirmed", confirmed(self.requests[rid])
                    )

    async def wait_all_results(self, timeout: float) -> None:
        def done() -> bool:
            return all(self.results.get(r) or _refused(self.answers.get(r)) for r in self.requests)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(done), timeout)
            except TimeoutError:
                missing = [
                    r for r in self.requests if not self.results.get(r) and not _refused(self.answers.get(r))
                ]
                raise AssertionError(f"{len(missing)} of {len(self.requests)} flows got no final answer "
                                     f"within {timeout}s") from None  # fmt: skip

    async def close(self) -> None:
        await self._connection.close()


def _refused(answers: list[dict[str, Any]] | None) -> bool:
    return bool(answers) and answers[-1]["result"] == "REJECTED"  # type: ignore[index]
