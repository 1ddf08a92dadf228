"""Per-party broker users with the least rights (`signhub provision`), and the hub's user_id check."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from contracts.topology import Names
from hub.provision import grant_for, provision, rabbitmqctl, remove
from tests.support.data import fresh_phone, sign_request
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, to

PARTIES_OF_TEST = {"banks": ["ICBC", "CCB"], "provinces": ["GD"]}


@pytest.fixture(scope="module")
async def users(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Probe, dict[str, str], str]]:
    workdir = Path(tmp_path_factory.mktemp("users"))
    async with running_hub(workdir, require_user_id=True, **PARTIES_OF_TEST) as (hub, probe):
        grants = [grant_for(Names(hub.settings.prefix), p) for p in hub.registry.parties()]
        ctl = rabbitmqctl()
        try:  # users made before a failure are removed too
            rows = provision(ctl, grants)
            yield probe, {user: password for _, user, password in rows}, hub.settings.prefix
        finally:
            remove(ctl, grants)


async def _connect(user: str, password: str) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(f"amqp://{user}:{password}@127.0.0.1:5672/")


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer that never runs: the broker refuses the consume."""


def _message(body: dict[str, object], msg_type: str, user_id: str | None) -> aio_pika.Message:
    return aio_pika.Message(json.dumps(body).encode(), message_id=uuid.uuid4().hex, type=msg_type,
                            content_type="application/json", user_id=user_id,
                            headers={"x-schema-version": 1})  # fmt: skip


async def test_a_bank_user_publishes_as_itself_and_the_hub_takes_it(
    users: tuple[Probe, dict[str, str], str],
) -> None:
    probe, passwords, prefix = users
    user = f"{prefix}.bank.ICBC"
    connection = await _connect(user, passwords[user])
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{prefix}.inbound", ensure=False)
        request = sign_request(fresh_phone())
        await exchange.publish(_message(request, "sign.request", user), routing_key="bank.ICBC.sign.request")
        await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    finally:
        await connection.close()


async def test_a_message_without_the_right_user_id_is_refused_unauthorized_sender(
    users: tuple[Probe, dict[str, str], str],
) -> None:
    probe, passwords, prefix = users
    user = f"{prefix}.bank.ICBC"
    connection = await _connect(user, passwords[user])
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{prefix}.inbound", ensure=False)
        message = _message(sign_request(fresh_phone()), "sign.request", None)
        await exchange.publish(message, routing_key="bank.ICBC.sign.request")
        told = await probe.expect(
            "message.rejected", to("bank.ICBC", "message.rejected", message_id=message.message_id)
        )
        assert told.body["reason_code"] == "UNAUTHORIZED_SENDER"
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "attempt", ["publish as CCB", "read crm.GD's queue", "declare a queue", "delete a queue"]
)
async def test_a_bank_user_cannot_act_for_another_party_or_change_the_topology(
    users: tuple[Probe, dict[str, str], str], attempt: str
) -> None:
    _, passwords, prefix = users
    user = f"{prefix}.bank.ICBC"
    connection = await _connect(user, passwords[user])
    try:
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(ChannelAccessRefused):
            if attempt == "publish as CCB":
                exchange = await channel.get_exchange(f"{prefix}.inbound", ensure=False)
                await exchange.publish(
                    _message({}, "sign.request", user), routing_key="bank.CCB.sign.request"
                )
            elif attempt == "read crm.GD's queue":
                queue = await channel.get_queue(f"{prefix}.party.crm.GD", ensure=False)
                await queue.consume(_ignore)
            elif attempt == "declare a queue":
                await channel.declare_queue(f"{prefix}.mine", durable=True)
            else:
                await channel.queue_delete(f"{prefix}.party.bank.ICBC")
    finally:
        await connection.close()
