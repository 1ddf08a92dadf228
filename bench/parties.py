"""Minimal scripted banks and CRMs on plain aio-pika, answering at once.

A bank sends `sign.request`, confirms on an APPROVED `sign.response` and waits for `sign.result`;
a CRM answers every `verify.request` OK and, on `sign.notify`, may answer `sign.synced`. Each
delivery is answered (publisher confirm awaited) before it is acknowledged, as a careful party
would. The same parties talk to the hub and to the raw relay, so both runs load the broker alike.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from bench import wire

STAMPS = ("req_pub", "vreq_rcv", "vresp_pub", "sresp_rcv", "conf_pub", "result_rcv", "notify_rcv", "done")


class Timeline:
    """perf_counter() stamps per flow; NaN where a step has not happened (yet)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.at: dict[str, array[float]] = {s: array("d", [math.nan]) * n for s in STAMPS}

    def mark(self, stamp: str, i: int) -> bool:
        """Stamps the first time only; False for a repeat."""
        column = self.at[stamp]
        if not math.isnan(column[i]):
            return False
        column[i] = time.perf_counter()
        return True

    def has(self, stamp: str, i: int) -> bool:
        return not math.isnan(self.at[stamp][i])


class _Publishers:
    """Several confirming channels on one connection, used in turn."""

    def __init__(self, exchanges: list[AbstractExchange]) -> None:
        self._cycle = itertools.cycle(exchanges)

    async def send(self, routing_key: str, msg: aio_pika.Message) -> None:
        await next(self._cycle).publish(msg, routing_key=routing_key, mandatory=True)


async def _publishers(conn: AbstractRobustConnection, exchange: str, count: int) -> _Publishers:
    exchanges = []
    for _ in range(count):
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchanges.append(await channel.get_exchange(exchange))
    return _Publishers(exchanges)


class Parties:
    def __init__(
        self, run: str, timeline: Timeline, on_done: Callable[[int, bool], None], synced: bool
    ) -> None:
        self.run = run
        self.timeline = timeline
        self._on_done = on_done
        self._synced = synced
        self._connections: list[AbstractRobustConnection] = []
        self._bank: _Publishers | None = None
        self._crm: _Publishers | None = None
        self.unexpected: Counter[str] = Counter()
        self.repeats: Counter[str] = Counter()
        self.errors: list[str] = []
        self.failed: list[tuple[int, str]] = []

    @classmethod
    async def connect(
        cls, url: str, prefix: str, run: str, timeline: Timeline, on_done: Callable[[int, bool], None], *,
        synced: bool = True, publishers: int = 4, prefetch: int = 256,
    ) -> Parties:  # fmt: skip
        parties = cls(run, timeline, on_done, synced)
        bank_conn = await aio_pika.connect_robust(url)
        crm_conn = await aio_pika.connect_robust(url)
        parties._connections = [bank_conn, crm_conn]
        parties._bank = await _publishers(bank_conn, f"{prefix}.inbound", publishers)
        parties._crm = await _publishers(crm_conn, f"{prefix}.inbound", publishers)
        for conn, kind, codes, callback in ((bank_conn, "bank", wire.BANKS, parties._on_bank),
                                            (crm_conn, "crm", wire.PROVINCES, parties._on_crm)):  # fmt: skip
            for code in codes:
                channel = await conn.channel()
                await channel.set_qos(prefetch_count=prefetch)
                queue = await channel.get_queue(f"{prefix}.party.{kind}.{code}", ensure=True)
                await queue.consume(callback)
        return parties

    async def start_flow(self, i: int) -> None:
        assert self._bank is not None
        self.timeline.mark("req_pub", i)
        request = wire.message("sign.request", wire.sign_request(self.run, i))
        try:
            await self._bank.send(f"bank.{wire.bank_of(i)}.sign.request", request)
        except Exception as exc:
            self.errors.append(f"publish of flow {i}'s sign.request: {exc!r}")
            self._fail(i, "sign.request not published")

    async def _on_bank(self, m: AbstractIncomingMessage) -> None:
        try:
            await self._bank_step(m, json.loads(m.body))
        except Exception as exc:  # a bench must count what went wrong, not stop at the first
            self.errors.append(f"bank {m.routing_key}: {exc!r}")
        await m.ack()

    async def _bank_step(self, m: AbstractIncomingMessage, body: dict[str, Any]) -> None:
        assert self._bank is not None
        if m.type == "sign.response":
            i = wire.flow_of_request_id(body["request_id"])
            if not self.timeline.mark("sresp_rcv", i):
                self.repeats[m.type] += 1
            elif body.get("result") != "APPROVED":
                self._fail(i, f"sign.response {body.get('result')} {body.get('reason_code')}")
            else:
                self.timeline.mark("conf_pub", i)
                bank = str(m.routing_key).split(".")[1]
                confirmed = wire.sign_confirmed(body["request_id"], wire.phone_of(i))
                await self._bank.send(
                    f"bank.{bank}.sign.confirmed", wire.message("sign.confirmed", confirmed)
                )
        elif m.type == "sign.result":
            i = wire.flow_of_request_id(body["request_id"])
            if not self.timeline.mark("result_rcv", i):
                self.repeats[m.type] += 1
            elif body.get("status") != "ACTIVE":
                self._fail(i, f"sign.result {body.get('status')} {body.get('reason_code')}")
            else:
                self._maybe_done(i)
        else:
            self.unexpected[f"{m.type} {body.get('reason_code', '')} {body.get('errors', '')}"[:200]] += 1

    async def _on_crm(self, m: AbstractIncomingMessage) -> None:
        try:
            await self._crm_step(m, json.loads(m.body))
        except Exception as exc:
            self.errors.append(f"crm {m.routing_key}: {exc!r}")
        await m.ack()

    async def _crm_step(self, m: AbstractIncomingMessage, body: dict[str, Any]) -> None:
        assert self._crm is not None
        province = str(m.routing_key).split(".")[1]
        if m.type == "verify.request":
            i = wire.flow_of_phone(body["phone"])
            if not self.timeline.mark("vreq_rcv", i):
                self.repeats[m.type] += 1  # a repeated ask is answered again, as the contract wants
            self.timeline.mark("vresp_pub", i)
            answer = wire.message("verify.response", wire.verify_ok(body["verify_id"]), m.message_id)
            await self._crm.send(f"crm.{province}.verify.response", answer)
        elif m.type == "sign.notify":
            i = wire.flow_of_phone(body["phone"])
            if not self.timeline.mark("notify_rcv", i):
                self.repeats[m.type] += 1
                return
            self._maybe_done(i)
            if self._synced:
                synced = wire.message(wire.SYNCED, wire.sign_synced(body["agreement_id"]), m.message_id)
                await self._crm.send(f"crm.{province}.{wire.SYNCED}", synced)
        else:
            self.unexpected[f"{m.type} {body.get('reason_code', '')} {body.get('errors', '')}"[:200]] += 1

    def _maybe_done(self, i: int) -> None:
        t = self.timeline
        if t.has("result_rcv", i) and t.has("notify_rcv", i) and t.mark("done", i):
            self._on_done(i, True)

    def _fail(self, i: int, why: str) -> None:
        self.failed.append((i, why))
        if self.timeline.mark("done", i):
            self._on_done(i, False)

    async def close(self) -> None:
        for conn in self._connections:
            await conn.close()
