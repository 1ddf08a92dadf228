"""The raw-broker bound: a bare relay in place of the hub, on a topology shaped like the hub's.

Same exchanges, one quorum inbound queue bound with `#`, a quorum queue per party; the relay
consumes with manual ack, publishes each hop's next message(s) (persistent, mandatory, publisher
confirms awaited), then acknowledges: every broker message of a hub flow, and no store, no
validation, no state. Run by the benchmark as its own process: `python -m bench.relay PREFIX`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, ExchangeType

from bench import wire
from bench.provenance import measured_line

_QUORUM = {"x-queue-type": "quorum"}


def queues(prefix: str) -> list[tuple[str, str]]:
    """(queue, binding on the outbound exchange) of every party queue."""
    return [(f"{prefix}.party.{kind}.{code}", f"{kind}.{code}.#")
            for kind, codes in (("bank", wire.BANKS), ("crm", wire.PROVINCES)) for code in codes]  # fmt: skip


async def declare(url: str, prefix: str) -> None:
    conn = await aio_pika.connect(url)
    try:
        ch = await conn.channel()
        inbound = await ch.declare_exchange(f"{prefix}.inbound", ExchangeType.TOPIC, durable=True)
        outbound = await ch.declare_exchange(f"{prefix}.outbound", ExchangeType.TOPIC, durable=True)
        hub_queue = await ch.declare_queue(f"{prefix}.hub.inbound", durable=True, arguments=_QUORUM)
        await hub_queue.bind(inbound, "#")
        for name, binding in queues(prefix):
            queue = await ch.declare_queue(name, durable=True, arguments=_QUORUM)
            await queue.bind(outbound, binding)
    finally:
        await conn.close()


async def delete(url: str, prefix: str) -> None:
    conn = await aio_pika.connect(url)
    try:
        ch = await conn.channel()
        for name in [f"{prefix}.hub.inbound", *(q for q, _ in queues(prefix))]:
            await ch.queue_delete(name)
        for exchange in (f"{prefix}.inbound", f"{prefix}.outbound"):
            await ch.exchange_delete(exchange)
    finally:
        await conn.close()


def next_hops(routing_key: str, body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(routing key, type, body) of what the hub would send on for this message."""
    kind, code, msg_type = routing_key.split(".", 2)
    if (kind, msg_type) == ("bank", "sign.request"):
        ask = {"verify_id": f"V.{code}.{body['request_id']}", "phone": body["phone"], "bank_code": code,
               "channel": body["channel"], "account_type": body["account_type"]}  # fmt: skip
        return [(f"crm.{wire.province_of(body['phone'])}.verify.request", "verify.request", ask)]
    if (kind, msg_type) == ("crm", "verify.response"):
        _, bank, request_id = body["verify_id"].split(".", 2)
        answer = {"request_id": request_id, "result": "APPROVED", "user_type": "PREPAID",
                  "recharge_threshold": 1000, "recharge_amount": 5000, "auto_pay_allowed": False}  # fmt: skip
        return [(f"bank.{bank}.sign.response", "sign.response", answer)]
    if (kind, msg_type) == ("bank", "sign.confirmed"):
        agreement_id = f"A{body['request_id']}"
        result = {"request_id": body["request_id"], "bank_agreement_no": body["bank_agreement_no"],
                  "status": "ACTIVE", "agreement_id": agreement_id, "agreement_version": 1}  # fmt: skip
        notify = {"agreement_id": agreement_id, "agreement_version": 1, "phone": body["phone"],
                  "bank_code": code, "account_last4": body["account_no"][-4:], "user_type": "PREPAID",
                  "recharge_threshold": 1000, "recharge_amount": 5000, "auto_pay": False, "channel": "ONLINE",
                  "signed_at": body["signed_at"]}  # fmt: skip
        return [(f"bank.{code}.sign.result", "sign.result", result),
                (f"crm.{wire.province_of(body['phone'])}.sign.notify", "sign.notify", notify)]  # fmt: skip
    return []  # sign.synced: consumed and acknowledged, nothing to send


class Relay:
    def __init__(self, channel: aiormq.Channel, outbound: AbstractExchange) -> None:
        self._channel = channel
        self._outbound = outbound.name
        self.errors = 0

    async def _publish(self, message: aio_pika.Message, routing_key: str) -> None:
        # As the hub's outbox relay publishes (hub/messaging/outbox_relay.py): confirm awaited,
        # a return raises, the frame's write not waited for; so the bound uses no less.
        await self._channel.basic_publish(message.body, exchange=self._outbound, routing_key=routing_key,
                                          properties=message.properties, mandatory=True, wait=False)  # fmt: skip

    async def on_message(self, m: AbstractIncomingMessage) -> None:
        try:
            hops = next_hops(str(m.routing_key), json.loads(m.body))
            await asyncio.gather(*(self._publish(wire.message(t, b, m.message_id), rk) for rk, t, b in hops))
        except Exception as exc:
            self.errors += 1
            print(f"relay: {m.routing_key}: {exc!r}", file=sys.stderr, flush=True)
        await m.ack()


async def run(url: str, prefix: str, prefetch: int) -> None:
    conn = await aio_pika.connect_robust(url)
    publishing = await conn.channel(publisher_confirms=True, on_return_raises=True)
    underlay = await publishing.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    relay = Relay(underlay, await publishing.get_exchange(f"{prefix}.outbound"))
    consuming = await conn.channel()
    await consuming.set_qos(prefetch_count=prefetch)
    queue = await consuming.get_queue(f"{prefix}.hub.inbound")
    await queue.consume(relay.on_message)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"relay ready; {measured_line()}", flush=True)  # the raw side's output names it
    await stop.wait()
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prefix")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--prefetch", type=int, default=64, help="as the hub's SIGNHUB_PREFETCH")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.prefix, args.prefetch))


if __name__ == "__main__":
    main()
