"""The simulated parties outlive a broker restart by themselves (issue 21), on a private node.

No hub: the test declares what the hub would on a RabbitMQ node of its own (`bench.broker_node`;
the machine's broker is shared and must not be restarted), sends what the hub would send and
watches what the parties publish (`tests.support.restartable_hub`). It deletes what it declared.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage

from bench.broker_node import BrokerNode, broker_node
from contracts.routing import Party, PartyKind
from hub.liveness import Part, PartDown, Watch
from simulators.crm import CrmSimulator
from simulators.party import PartyClient
from simulators.seed import World, build_world
from tests.support.restartable_hub import RestartableHub, declare_hub

pytestmark = pytest.mark.broker

CRM_GD = Party(PartyKind.CRM, "GD")
BACK_WITHIN_S = 30.0  # the broker restarted: reconnected, consumer restored, answer confirmed
RECONNECT_S = 0.5


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[BrokerNode]:
    async with broker_node() as started:
        yield started


@pytest.fixture
async def hub(node: BrokerNode) -> AsyncIterator[RestartableHub]:
    # A topology per test: a request the fake hub had to send twice (its confirm was lost in the
    # restart) must not reach the next test's party.
    declared = await declare_hub(node.url, [CRM_GD])
    try:
        yield declared
    finally:
        await declared.delete()


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(17, ["ICBC"], ["GD"], 10)


def _verify(phone: str) -> dict[str, Any]:
    return {
        "verify_id": f"V{uuid.uuid4().hex[:12]}",
        "phone": phone,
        "bank_code": "ICBC",
        "channel": "ONLINE",
    }


async def _works_within(client: PartyClient, timeout: float) -> None:
    """Until the party's check passes (it has no event to wait on: it is asked), bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await asyncio.wait_for(client.check(), 5.0)
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{client.party} did not work again within {timeout:g} s: {exc!r}"
                ) from exc
            await asyncio.sleep(0.2)


async def test_a_crm_answers_a_verify_request_sent_after_the_broker_restarted(
    node: BrokerNode, hub: RestartableHub, world: World, tmp_path: Path
) -> None:
    client = await PartyClient.connect(node.url, hub.names.prefix, CRM_GD, reconnect_s=RECONNECT_S)
    crm = CrmSimulator(client, world.subscribers["GD"], sms_log=tmp_path / "sms-GD.log")
    await crm.start()
    try:
        await client.check()
        await node.stop_app()
        with pytest.raises(PartDown, match="channel is closed"):
            await client.check()
        await node.start_app()

        message_id = await hub.send(CRM_GD, "verify.request", _verify(world.signable("GD")[0].phone))
        answer = await hub.answer_to(message_id, "verify.response after the broker restarted", BACK_WITHIN_S)
        await _works_within(client, BACK_WITHIN_S)
    finally:
        await client.close()
    assert answer.routing_key == "crm.GD.verify.response" and answer.body["result"] == "OK"
    assert client.errors == []


async def test_an_answer_not_confirmed_before_the_broker_went_away_is_sent_when_it_is_back(
    node: BrokerNode, hub: RestartableHub
) -> None:
    # The handler holds its answer until the broker is gone; the publish then gives up after
    # 1 s, and the redelivery after the restart must be answered, not dropped as a repeat.
    message_id, arrived, release, handled = uuid.uuid4().hex, asyncio.Event(), asyncio.Event(), []
    client = await PartyClient.connect(
        node.url, hub.names.prefix, CRM_GD, reconnect_s=RECONNECT_S, publish_deadline_s=1.0
    )

    async def answer_when_released(
        msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage
    ) -> None:
        handled.append(incoming.message_id)
        arrived.set()
        await asyncio.wait_for(release.wait(), BACK_WITHIN_S)
        answer = {"verify_id": body["verify_id"], "result": "REJECTED", "reason_code": "NOT_FOUND"}
        await client.publish("verify.response", answer, correlation_id=incoming.message_id)

    await client.start(answer_when_released)
    try:
        await hub.send(CRM_GD, "verify.request", _verify("13800138000"), message_id=message_id)
        await asyncio.wait_for(arrived.wait(), BACK_WITHIN_S)
        await node.stop_app()
        release.set()
        await _owed_within(client, BACK_WITHIN_S)
        await node.start_app()
        answer = await hub.answer_to(message_id, "verify.response owed across the restart", BACK_WITHIN_S)
    finally:
        await client.close()
    assert answer.body["reason_code"] == "NOT_FOUND"
    assert handled == [message_id], "the redelivery sends the owed answer; the handler runs once"
    assert client.errors == []


async def _owed_within(client: PartyClient, timeout: float) -> None:
    """Until the party gave up publishing and owes the answer (asked: there is no event), bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not client.owed:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{client.party} did not give up its publish within {timeout:g} s")
        await asyncio.sleep(0.05)


async def test_a_crm_answers_after_the_broker_closed_every_connection(
    node: BrokerNode, hub: RestartableHub, world: World, tmp_path: Path
) -> None:
    client = await PartyClient.connect(node.url, hub.names.prefix, CRM_GD, reconnect_s=RECONNECT_S)
    crm = CrmSimulator(client, world.subscribers["GD"], sms_log=tmp_path / "sms-GD.log")
    await crm.start()
    try:
        await node.close_all_connections()
        message_id = await hub.send(CRM_GD, "verify.request", _verify(world.signable("GD")[0].phone))
        answer = await hub.answer_to(
            message_id, "verify.response after the connections were closed", BACK_WITHIN_S
        )
        await _works_within(client, BACK_WITHIN_S)
    finally:
        await client.close()
    assert answer.body["result"] == "OK" and client.errors == []


async def test_a_party_whose_exchange_and_queue_were_lost_and_declared_again_repairs_itself_and_answers(
    node: BrokerNode, hub: RestartableHub, world: World, tmp_path: Path
) -> None:
    # As after the loss of a node that comes back empty and a hub that declares its topology
    # again: the connection stays up, but the broker closed the party's channels (its consumer
    # cancelled, a passive declare of the missing exchange refused), and aio-pika does not reopen
    # them; the watch's repair does.
    client = await PartyClient.connect(node.url, hub.names.prefix, CRM_GD, reconnect_s=RECONNECT_S)
    crm = CrmSimulator(client, world.subscribers["GD"], sms_log=tmp_path / "sms-GD.log")
    await crm.start()
    watch = Watch([Part(f"simulator {CRM_GD}", client.check, client.repair)], every_s=0.2, exit_after_s=60)
    watching = asyncio.create_task(watch.run())
    try:
        await hub.forget_topology()
        assert (await watch.check_now())[f"simulator {CRM_GD}"] is not None, "it must not work meanwhile"
        await hub.declare_topology()
        await _works_within(client, BACK_WITHIN_S)
        message_id = await hub.send(CRM_GD, "verify.request", _verify(world.signable("GD")[0].phone))
        answer = await hub.answer_to(
            message_id, "verify.response after the topology came back", BACK_WITHIN_S
        )
    finally:
        watching.cancel()
        await client.close()
    assert answer.body["result"] == "OK" and client.errors == []
