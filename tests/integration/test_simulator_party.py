"""The simulated parties on the real RabbitMQ, with this test standing in for the hub.

The test declares what the hub would (the two topic exchanges and the party queues) under a
prefix of its own, sends what the hub would send, and watches what the parties publish through
a queue bound to the inbound exchange with `#`. It deletes everything it declared.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from contracts.common import ReasonCode
from contracts.routing import Party, PartyKind
from contracts.topology import Names
from simulators.bank import BankKnobs, BankSimulator
from simulators.boss import BossSimulator
from simulators.crm import CrmSimulator
from simulators.party import PartyClient, TopologyMissing
from simulators.recording import Received, Recorder
from simulators.runner import start_simulators
from simulators.seed import World, build_world

pytestmark = pytest.mark.broker

AMQP_URL = os.environ.get("SIGNHUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
WAIT_S = 10.0
CRM_GD = Party(PartyKind.CRM, "GD")
BOSS_GD = Party(PartyKind.BOSS, "GD")
BANK_ICBC = Party(PartyKind.BANK, "ICBC")


@dataclass
class FakeHub:
    """The hub's side of the broker: sends to parties, and sees what they publish."""

    names: Names
    connection: AbstractRobustConnection
    channel: AbstractChannel
    outbound: AbstractExchange
    seen: Recorder

    async def send(
        self, party: Party, msg_type: str, body: dict[str, Any], message_id: str | None = None
    ) -> str:
        return await self.send_raw(party, msg_type, json.dumps(body).encode(), message_id=message_id)

    async def send_raw(
        self, party: Party, msg_type: str, raw: bytes, *, message_id: str | None = None
    ) -> str:
        message_id = message_id or uuid.uuid4().hex
        message = aio_pika.Message(
            raw,
            message_id=message_id,
            type=msg_type,
            content_type="application/json",
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"x-schema-version": 1},
        )
        await self.outbound.publish(message, routing_key=f"{party}.{msg_type}", mandatory=True)
        return message_id

    async def published(self, match: Callable[[Received], bool], what: str) -> Received:
        """The first message a party published that `match`es, waiting at most WAIT_S."""
        await self.seen.wait_until(lambda: any(match(r) for r in self.seen.received), what, WAIT_S)
        return next(r for r in self.seen.received if match(r))

    async def answer_to(self, message_id: str, what: str) -> Received:
        """The first message a party published in answer to the hub's `message_id`."""
        return await self.published(lambda r: r.correlation_id == message_id, what)

    def answers_to(self, message_id: str) -> list[Received]:
        return [r for r in self.seen.received if r.correlation_id == message_id]


@pytest.fixture(scope="module")
async def hub() -> AsyncIterator[FakeHub]:
    names = Names(f"simtest-{uuid.uuid4().hex[:8]}")
    connection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    queues = [names.party_queue(p) for p in (CRM_GD, BOSS_GD, BANK_ICBC)]
    observer = f"{names.prefix}.observer"
    try:
        inbound = await channel.declare_exchange(names.inbound_exchange, "topic", durable=True)
        outbound = await channel.declare_exchange(names.outbound_exchange, "topic", durable=True)
        for party, name in zip((CRM_GD, BOSS_GD, BANK_ICBC), queues, strict=True):
            queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
            await queue.bind(outbound, Names.party_binding(party))
        watch = await channel.declare_queue(observer, durable=False, auto_delete=False)
        await watch.bind(inbound, "#")
        seen = Recorder("the fake hub")
        await watch.consume(_observe_into(seen))
        yield FakeHub(names, connection, channel, outbound, seen)
    finally:
        await _delete(connection, [*queues, observer], [names.inbound_exchange, names.outbound_exchange])


def _observe_into(seen: Recorder) -> Callable[[AbstractIncomingMessage], Any]:
    async def observe(message: AbstractIncomingMessage) -> None:
        async with message.process():
            msg_type = message.type or ""
            await seen.add(Received.of(msg_type, json.loads(message.body), message))

    return observe


async def _delete(connection: AbstractRobustConnection, queues: list[str], exchanges: list[str]) -> None:
    # A fresh channel: the test's own may have been closed by a failure.
    channel = await connection.channel()
    for name in queues:
        await channel.queue_delete(name)
    for name in exchanges:
        await channel.exchange_delete(name)
    await connection.close()


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(17, ["ICBC"], ["GD"], 10)


@pytest.fixture
async def crm(hub: FakeHub, world: World, tmp_path: Path) -> AsyncIterator[CrmSimulator]:
    client = await PartyClient.connect(AMQP_URL, hub.names.prefix, CRM_GD)
    simulator = CrmSimulator(client, world.subscribers["GD"], sms_log=tmp_path / "sms-GD.log")
    await simulator.start()
    yield simulator
    await client.close()


def _verify(phone: str) -> dict[str, Any]:
    return {
        "verify_id": f"V{uuid.uuid4().hex[:12]}",
        "phone": phone,
        "bank_code": "ICBC",
        "channel": "ONLINE",
    }


async def test_the_crm_answers_verify_request_correlated_on_its_own_routing_key(
    hub: FakeHub, crm: CrmSimulator, world: World
) -> None:
    subscriber = world.signable("GD")[0]
    request = _verify(subscriber.phone)
    message_id = await hub.send(CRM_GD, "verify.request", request)

    answer = await hub.published(lambda r: r.correlation_id == message_id, f"verify.response to {message_id}")

    assert answer.routing_key == "crm.GD.verify.response"
    assert answer.msg_type == "verify.response"
    assert answer.body["verify_id"] == request["verify_id"]
    assert answer.body["result"] == "OK"
    assert answer.body["user_type"] == subscriber.user_type
    assert answer.body["auto_pay_allowed"] is subscriber.auto_pay_allowed
    assert answer.body.get("recharge_amount") == subscriber.recharge_amount
    assert answer.message_id and answer.message_id != message_id


async def test_the_crm_refuses_each_kind_of_number_with_its_reason(
    hub: FakeHub, crm: CrmSimulator, world: World
) -> None:
    for subscriber in world.subscribers["GD"][:5]:
        message_id = await hub.send(CRM_GD, "verify.request", _verify(subscriber.phone))
        answer = await hub.answer_to(message_id, f"verify.response for {subscriber}")
        assert answer.body["result"] == "REJECTED"
        assert answer.body["reason_code"] == subscriber.expected_refusal
        if subscriber.expected_refusal is ReasonCode.ALREADY_SIGNED:
            assert answer.body["existing_agreement_id"] == subscriber.existing_agreement_id


async def test_a_repeated_message_id_is_dropped_and_answered_once(
    hub: FakeHub, crm: CrmSimulator, world: World
) -> None:
    phone = world.signable("GD")[1].phone
    repeated = await hub.send(CRM_GD, "verify.request", _verify(phone))
    await hub.send(CRM_GD, "verify.request", _verify(phone), message_id=repeated)
    later = await hub.send(CRM_GD, "verify.request", _verify(phone))

    # The queue delivers in order to one consumer: once `later` is answered, the repeat was seen.
    await hub.published(lambda r: r.correlation_id == later, f"verify.response to {later}")

    assert len(hub.answers_to(repeated)) == 1
    assert crm.client.duplicates == 1


async def test_a_malformed_message_is_taken_and_recorded_without_wedging_the_queue(
    hub: FakeHub, crm: CrmSimulator, world: World
) -> None:
    bad = await hub.send_raw(CRM_GD, "verify.request", b"{not json")
    off_contract = await hub.send(CRM_GD, "verify.request", {"verify_id": "V-no-phone"})
    good = await hub.send(CRM_GD, "verify.request", _verify(world.signable("GD")[0].phone))

    await hub.published(lambda r: r.correlation_id == good, f"verify.response to {good}")

    assert [e.message_id for e in crm.client.errors] == [bad, off_contract]
    assert not hub.answers_to(bad) and not hub.answers_to(off_contract)
    queue = await hub.channel.get_queue(hub.names.party_queue(CRM_GD))
    assert queue.declaration_result.message_count == 0


async def test_a_sign_notify_is_recorded_answered_synced_to_boss_and_texted(
    hub: FakeHub, crm: CrmSimulator, world: World
) -> None:
    subscriber = world.signable("GD")[2]
    notify = {
        "agreement_id": f"AG{uuid.uuid4().hex[:10]}",
        "agreement_version": 1,
        "phone": subscriber.phone,
        "bank_code": "ICBC",
        "account_last4": "1234",
        "user_type": "PREPAID",
        "recharge_threshold": 1000,
        "recharge_amount": 5000,
        "auto_pay": False,
        "channel": "ONLINE",
        "signed_at": "2026-11-26T10:00:00+08:00",
    }
    message_id = await hub.send(CRM_GD, "sign.notify", notify)

    synced = await hub.published(lambda r: r.correlation_id == message_id, "sign.synced")
    sync = await hub.published(
        lambda r: r.msg_type == "boss.sync" and r.body["agreement_id"] == notify["agreement_id"], "boss.sync"
    )

    assert synced.routing_key == "crm.GD.sign.synced" and synced.body["result"] == "OK"
    assert sync.body["action"] == "ADD" and sync.body["recharge_amount"] == 5000
    agreement = await crm.wait_agreement(subscriber.phone)
    assert agreement.agreement_id == notify["agreement_id"] and agreement.account_last4 == "1234"
    assert crm.sms.path is not None
    line = crm.sms.path.read_text(encoding="utf-8").splitlines()[-1]
    assert subscriber.phone in line and "中国工商银行" in line and "QXYD" in line


async def test_the_boss_answers_agreement_sync_and_keeps_its_table(hub: FakeHub) -> None:
    client = await PartyClient.connect(AMQP_URL, hub.names.prefix, BOSS_GD)
    boss = BossSimulator(client)
    await boss.start()
    try:
        sync = {"agreement_id": "AG-boss-1", "phone": "13800138000", "action": "ADD", "user_type": "POSTPAID"}
        message_id = await hub.send(BOSS_GD, "agreement.sync", sync)
        answer = await hub.published(lambda r: r.correlation_id == message_id, "agreement.synced")
    finally:
        await client.close()
    assert answer.routing_key == "boss.GD.agreement.synced"
    assert answer.body == {"agreement_id": "AG-boss-1", "result": "OK"}
    assert "AG-boss-1" in boss.active()


async def test_the_bank_signs_after_approval_and_refuses_a_frozen_account_locally(
    hub: FakeHub, world: World
) -> None:
    client = await PartyClient.connect(AMQP_URL, hub.names.prefix, BANK_ICBC)
    bank = BankSimulator(client, world.accounts["ICBC"], BankKnobs())
    await bank.start()
    try:
        frozen, account = world.accounts["ICBC"][0], world.usable_accounts("ICBC")[0]
        refused = await bank.start_signing("13800138000", frozen)
        request_id = await bank.start_signing("13800138001", account)
        request = await hub.published(lambda r: r.body.get("request_id") == request_id, "sign.request")
        response = {
            "request_id": request_id,
            "result": "APPROVED",
            "user_type": "PREPAID",
            "recharge_threshold": 2000,
            "recharge_amount": 5000,
            "auto_pay_allowed": False,
        }
        await hub.send(BANK_ICBC, "sign.response", response, message_id=None)
        confirmed = await hub.published(
            lambda r: r.msg_type == "sign.confirmed" and r.body["request_id"] == request_id, "sign.confirmed"
        )
        result = {
            "request_id": request_id,
            "bank_agreement_no": confirmed.body["bank_agreement_no"],
            "status": "ACTIVE",
            "agreement_id": "AG-bank-1",
            "agreement_version": 1,
        }
        await hub.send(BANK_ICBC, "sign.result", result)
        outcome = await bank.wait_for(request_id, lambda o: o.active, WAIT_S, "sign.result ACTIVE")
    finally:
        await client.close()

    assert request.routing_key == "bank.ICBC.sign.request"
    assert request.body["account_no"] == account.account_no and request.body["id_no"] == account.id_no
    assert confirmed.body["recharge_threshold"] == 2000 and confirmed.body["recharge_amount"] == 5000
    assert confirmed.body["auto_pay"] is False
    assert outcome.bank_agreement_no == confirmed.body["bank_agreement_no"]
    assert bank.agreements[confirmed.body["bank_agreement_no"]].agreement_id == "AG-bank-1"
    assert bank.outcomes[refused].local_refusal is not None
    assert not any(r.body.get("request_id") == refused for r in hub.seen.received)


async def test_a_party_whose_queue_the_hub_has_not_declared_is_told_which(hub: FakeHub) -> None:
    client = await PartyClient.connect(AMQP_URL, hub.names.prefix, Party(PartyKind.BANK, "CCB"))
    try:
        with pytest.raises(TopologyMissing, match=rf"{hub.names.prefix}\.party\.bank\.CCB"):
            await client.start(_ignore)
    finally:
        await client.close()


async def test_a_party_of_a_hub_that_never_started_is_told_which_exchange_is_missing() -> None:
    with pytest.raises(TopologyMissing, match=r"nohub-\w+\.inbound"):
        await PartyClient.connect(AMQP_URL, f"nohub-{uuid.uuid4().hex[:8]}", CRM_GD)


async def test_a_bank_that_sends_twice_repeats_the_message_id(hub: FakeHub, world: World) -> None:
    client = await PartyClient.connect(AMQP_URL, hub.names.prefix, BANK_ICBC)
    bank = BankSimulator(client, world.accounts["ICBC"], BankKnobs(send_twice=True))
    try:
        request_id = await bank.start_signing("13800138002", world.usable_accounts("ICBC")[1])
        what = "two copies of the sign.request"
        await hub.seen.wait_until(lambda: len(_requests(hub, request_id)) == 2, what, WAIT_S)
    finally:
        await client.close()
    first, second = _requests(hub, request_id)
    assert first.message_id == second.message_id and first.body == second.body


async def _ignore(msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage) -> None:
    return None


def _requests(hub: FakeHub, request_id: str) -> list[Received]:
    return [
        r for r in hub.seen.received if r.msg_type == "sign.request" and r.body["request_id"] == request_id
    ]


async def test_the_runner_starts_every_party_of_the_registry_and_closes_them(
    hub: FakeHub, world: World, tmp_path: Path
) -> None:
    sims = await start_simulators(AMQP_URL, hub.names.prefix, world, ["ICBC"], ["GD"], tmp_path)
    try:
        message_id = await hub.send(CRM_GD, "verify.request", _verify(world.signable("GD")[0].phone))
        await hub.published(lambda r: r.correlation_id == message_id, "verify.response from the runner's CRM")
        sync = {"agreement_id": "AG-runner", "phone": "13800138000", "action": "DELETE"}
        sync_id = await hub.send(BOSS_GD, "agreement.sync", sync)
        await hub.published(lambda r: r.correlation_id == sync_id, "agreement.synced from the runner's BOSS")
    finally:
        await sims.close()
    assert (set(sims.banks), set(sims.crms), set(sims.bosses)) == ({"ICBC"}, {"GD"}, {"GD"})
    assert sims.errors() == {}
