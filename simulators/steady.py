"""Scripted banks and CRMs for fault runs: they answer at once and record every delivery.

Plain aio-pika with a robust connection, written from the contract: a bank sends `sign.request`,
confirms once on the first APPROVED `sign.response` of a request, and waits for `sign.result`; a
CRM approves every `verify.request` (prepaid terms) and answers every `sign.notify` with
`sign.synced`. A careful party's habits: repeats are dropped by `message_id`; a publish that was
not confirmed (the broker went away) is sent again unchanged, under the same `message_id`, until
it is. A clumsy one's: a share (`repeat_share`) of messages is sent twice under one `message_id`.
Everything received is kept, so a run can count lost, doubled and repeated answers.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

CARD = "6222020200112233445"
ID_NO = "11010519491231002X"
_PUBLISH_TRY_S = 5.0


@dataclass(slots=True)
class Flow:
    bank: str
    phone: str
    request_id: str


class SteadyParties:
    """Every bank and CRM of one hub prefix, in one connection."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        prefix: str,
        repeat_share: float = 0.0,
    ) -> None:
        self._connection = connection
        self._repeat_share = repeat_share
        self._rng = random.Random(7)
        self.repeats_sent = 0
        self._channel = channel
        self._prefix = prefix
        self.flows: dict[str, Flow] = {}
        self.by_phone: dict[str, str] = {}
        self.deliveries: Counter[tuple[str, str]] = Counter()  # (queue, message_id) -> times delivered
        self.answers: dict[tuple[str, str], set[str]] = defaultdict(set)  # (key, type) -> message_ids
        self.status: dict[str, str] = {}  # request_id -> the first sign.result status
        self.refused: dict[str, str] = {}  # request_id -> reason_code of a REJECTED sign.response
        # time.monotonic() of a flow's start and of its first sign.response: how soon the hub
        # answered again after a broker restart
        self.started_at: dict[str, float] = {}
        self.answered_at: dict[str, float] = {}
        self.publish_retries = 0
        self._confirmed: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(
        cls, url: str, prefix: str, banks: list[str], provinces: list[str], repeat_share: float = 0.0
    ) -> SteadyParties:
        connection = await aio_pika.connect_robust(
            url, client_properties={"connection_name": "steady parties"}
        )
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=200)
        parties = cls(connection, channel, prefix, repeat_share)
        for name in [f"bank.{b}" for b in banks] + [f"crm.{p}" for p in provinces]:
            queue = await channel.get_queue(f"{prefix}.party.{name}", ensure=True)
            await queue.consume(parties._on_message)
        return parties

    async def sign(self, bank: str, phone: str) -> str:
        """Starts one bank-channel flow; returns its request_id."""
        rid = f"F{uuid.uuid4().hex[:16]}"
        self.flows[rid] = Flow(bank, phone, rid)
        self.started_at[rid] = time.monotonic()
        self.by_phone[phone] = rid
        body = {"request_id": rid, "phone": phone, "account_no": CARD, "account_type": "DEBIT",
                "holder_name": "张三", "id_type": "ID_CARD", "id_no": ID_NO, "channel": "ONLINE"}  # fmt: skip
        await self.publish(f"bank.{bank}.sign.request", body)
        return rid

    async def publish(
        self, routing_key: str, body: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        """Publishes (sometimes twice, as a clumsy party would) under one message_id."""
        mid = uuid.uuid4().hex
        await self._publish(routing_key, body, correlation_id, mid)
        if self._rng.random() < self._repeat_share:
            self.repeats_sent += 1
            await self._publish(routing_key, body, correlation_id, mid)

    async def _publish(
        self,
        routing_key: str,
        body: dict[str, Any],
        correlation_id: str | None,
        mid: str,
        deadline_s: float = 120.0,
    ) -> None:
        """Publishes until the broker confirms it (a lost confirm means: send again, same message_id)."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_s
        while True:
            message = aio_pika.Message(
                raw, message_id=mid, type=routing_key.split(".", 2)[2], content_type="application/json",
                correlation_id=correlation_id, headers={"x-schema-version": 1},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )  # fmt: skip
            try:
                exchange = await self._channel.get_exchange(f"{self._prefix}.inbound", ensure=False)
                await asyncio.wait_for(exchange.publish(message, routing_key=routing_key, mandatory=True),
                                       _PUBLISH_TRY_S)  # fmt: skip
                return
            except Exception:
                if loop.time() > until:
                    raise
                self.publish_retries += 1
                await asyncio.sleep(0.5)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        mid = message.message_id or ""
        kind, code, msg_type = (message.routing_key or "..").split(".", 2)
        self.deliveries[(f"{kind}.{code}", mid)] += 1
        if self.deliveries[(f"{kind}.{code}", mid)] == 1:
            body = json.loads(message.body)
            # Answer in a task: a consumer that waits for its own publish confirm during a broker
            # outage would hold the delivery; the ack waits for the answer all the same.
            task = asyncio.create_task(self._answer_then_ack(kind, code, msg_type, body, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await message.ack()

    async def _answer_then_ack(
        self, kind: str, code: str, msg_type: str, body: dict[str, Any], message: AbstractIncomingMessage
    ) -> None:
        mid = message.message_id or ""
        if kind == "bank":
            await self._bank(code, msg_type, body, mid)
        else:
            await self._crm(code, msg_type, body, mid, message.message_id)
        try:
            await message.ack()
        except Exception:  # the channel went away: the broker redelivers, the repeat is dropped
            return

    async def _bank(self, code: str, msg_type: str, body: dict[str, Any], mid: str) -> None:
        rid = str(body.get("request_id", ""))
        self.answers[(rid, msg_type)].add(mid)
        if msg_type == "sign.response":
            self.answered_at.setdefault(rid, time.monotonic())
        if msg_type == "sign.response" and body.get("result") == "APPROVED" and rid not in self._confirmed:
            self._confirmed.add(rid)
            phone = self.flows[rid].phone if rid in self.flows else body.get("phone", "")
            await self.publish(f"bank.{code}.sign.confirmed", {
                "request_id": rid, "bank_agreement_no": f"BA{rid}", "phone": phone, "account_no": CARD,
                "account_type": "DEBIT", "signed_at": "2026-11-26T10:01:00+08:00"})  # fmt: skip
        elif msg_type == "sign.response" and body.get("result") == "REJECTED":
            self.refused.setdefault(rid, str(body.get("reason_code")))
        elif msg_type == "sign.result":
            self.status.setdefault(rid, str(body.get("status")))

    async def _crm(self, code: str, msg_type: str, body: dict[str, Any], mid: str, ask: str | None) -> None:
        rid = self.by_phone.get(str(body.get("phone", "")), "?")
        self.answers[(rid, msg_type)].add(mid)
        if msg_type == "verify.request":
            await self.publish(f"crm.{code}.verify.response", {
                "verify_id": body["verify_id"], "result": "OK", "user_type": "PREPAID",
                "recharge_threshold": 1000, "recharge_amount": 5000, "auto_pay_allowed": False}, ask)  # fmt: skip
        elif msg_type == "sign.notify":
            await self.publish(
                f"crm.{code}.sign.synced", {"agreement_id": body["agreement_id"], "result": "OK"}
            )

    def finished(self) -> set[str]:
        return {rid for rid in self.flows if rid in self.status}

    def duplicate_deliveries(self) -> int:
        return sum(n - 1 for n in self.deliveries.values())

    def doubled_answers(self) -> list[tuple[str, str]]:
        """(request_id, type) answered under more than one message_id: a second effect."""
        return [key for key, mids in self.answers.items() if len(mids) > 1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._connection.close()
