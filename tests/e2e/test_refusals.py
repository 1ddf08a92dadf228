"""Bad input gets a clear answer and loses nothing: dead queue with a reason, the sender told."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest

from hub.bootstrap import Hub
from tests.support.data import fresh_phone, sign_request
from tests.support.probe import Probe, to


def _dead(probe: Probe, mid: str):  # type: ignore[no-untyped-def]
    return lambda r: r.queue == f"{probe.prefix}.dead" and r.message_id == mid


async def _refused(probe: Probe, mid: str, party: str, reason: str) -> None:
    dead = await probe.expect(f"dead copy of {mid}", _dead(probe, mid))
    assert dead.headers["x-signhub-reason"] == reason
    assert dead.headers["x-signhub-error"]
    told = await probe.expect(f"message.rejected for {mid}", to(party, "message.rejected", message_id=mid))
    assert told.body["reason_code"] == reason and told.body["errors"]
    assert told.correlation_id == mid


async def test_a_body_that_is_not_json_is_refused_and_the_sender_told(probe: Probe) -> None:
    mid = await probe.publish("bank.ICBC", "sign.request", b"\xff\xfe not json 6222020200112233445")
    await _refused(probe, mid, "bank.ICBC", "INVALID_MESSAGE")
    dead = await probe.expect("dead copy", _dead(probe, mid))
    assert b"6222020200112233445" not in dead.raw


async def test_an_invalid_message_is_refused_with_every_problem_and_numbers_masked(
    hub: Hub, probe: Probe
) -> None:
    body = sign_request("12345", account_type="SAVINGS")
    mid = await probe.publish("bank.ICBC", "sign.request", body)
    await _refused(probe, mid, "bank.ICBC", "INVALID_MESSAGE")
    dead = await probe.expect("dead copy", _dead(probe, mid))
    assert dead.body["account_no"] == "622202*********3445" and dead.body["id_no"].endswith("002X")
    assert dead.headers["x-signhub-routing-key"] == "bank.ICBC.sign.request"
    told = await probe.expect("rejection", to("bank.ICBC", "message.rejected", message_id=mid))
    assert any(e.startswith("phone") for e in told.body["errors"])
    assert any(e.startswith("account_type") for e in told.body["errors"])
    stored = await hub.store.query(
        "SELECT reason, original_enc FROM dead_messages WHERE message_id=?", (mid,)
    )
    assert stored[0]["reason"] == "INVALID_MESSAGE" and "6222020200112233445" not in stored[0]["original_enc"]


@pytest.mark.parametrize(
    ("problem", "kwargs"),
    [
        ("type property differs", {"msg_type_property": "sign.confirmed"}),
        ("wrong content type", {"content_type": "text/plain"}),
        ("wrong schema version", {"headers": {"x-schema-version": 2}}),
    ],
)
async def test_an_envelope_that_breaks_the_rules_is_invalid(
    probe: Probe, problem: str, kwargs: dict[str, object]
) -> None:
    mid = await probe.publish("bank.ICBC", "sign.request", sign_request(fresh_phone()), **kwargs)  # type: ignore[arg-type]
    await _refused(probe, mid, "bank.ICBC", "INVALID_MESSAGE")


async def test_an_unknown_type_is_refused_not_dropped(probe: Probe) -> None:
    mid = await probe.publish("bank.ICBC", "sign.teleport", {"x": 1})
    await _refused(probe, mid, "bank.ICBC", "UNKNOWN_TYPE")


async def test_a_type_of_another_kind_is_an_unauthorized_sender(probe: Probe) -> None:
    mid = await probe.publish("bank.ICBC", "verify.response", {"verify_id": "V1", "result": "OK"})
    await _refused(probe, mid, "bank.ICBC", "UNAUTHORIZED_SENDER")


@asynccontextmanager
async def _everything_the_hub_sends(hub: Hub) -> AsyncIterator[Probe]:
    """A temporary queue bound with `#` to the outbound exchange, read by a probe of its own: it
    gets whatever the hub publishes, to any routing key, whether a party's queue takes it or not."""
    url, name = hub.settings.amqp_url.get_secret_value(), f"{hub.settings.prefix}.test-tap-{uuid.uuid4().hex[:8]}"
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name)
        try:
            await queue.bind(hub.deps.names.outbound_exchange, "#")
            tap = await Probe.connect(url, hub.settings.prefix, [name])
            try:
                yield tap
            finally:
                await tap.close()
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def test_an_unknown_sender_is_refused_and_nobody_is_answered(hub: Hub, probe: Probe) -> None:
    async with _everything_the_hub_sends(hub) as sent:
        mid = await probe.publish("bank.NOPE", "sign.request", sign_request(fresh_phone()))
        dead = await probe.expect("dead copy", _dead(probe, mid))
        # Whatever the hub sent about `mid` went out before its refusal of a marker sent after it.
        marker = await probe.publish("bank.ICBC", "sign.request", {"marker": True})
        await sent.expect("the marker's refusal", to("bank.ICBC", "message.rejected", message_id=marker))

    assert dead.headers["x-signhub-reason"] == "UNKNOWN_SENDER"
    assert dead.headers["x-signhub-sender"] == "bank.NOPE"  # the sender the routing key claims, not "bank.NOPE.sign"
    about_it = [r for r in sent.received if r.routing_key.startswith("bank.NOPE.")
                or mid in (r.correlation_id, r.body.get("message_id"))]  # fmt: skip
    assert about_it == [], "the hub answered a sender it does not know"


async def test_every_type_a_party_may_send_has_a_handler_except_flow_4s(hub: Hub) -> None:
    # NOT_SUPPORTED was the answer to recon.file and errors.applied until flow 3 was built. Contract
    # 1.1 added flow 4 (the recharge), which is not built yet: its types are the ones left.
    from contracts.catalogue import INBOUND
    from hub.services.dispatch import HANDLERS

    assert [f"{e.kind}.{e.type}" for e in INBOUND if (e.kind, e.type) not in HANDLERS] == [
        "bank.debit.result", "bank.reverse.result", "boss.recharge.request", "boss.credit.result",
        "boss.recon.file",
    ]  # fmt: skip


def _file(scope: str) -> dict[str, object]:
    return {"file_name": f"F{uuid.uuid4().hex[:8]}.txt", "business_date": "2026-11-25", "scope": scope,
            "record_count": 0, "sha256": "0" * 64}  # fmt: skip


FLOW_4 = [
    ("boss.GD", "recharge.request", {"recharge_id": "RC1", "phone": "13800138000", "trigger": "LOW_BALANCE",
                                     "balance": 300}),
    ("bank.ICBC", "debit.result", {"debit_id": "DB1", "result": "SUCCEEDED", "amount": 5000,
                                   "bank_txn_no": "T1", "debited_at": "2026-11-26T10:00:00+08:00"}),
    ("bank.ICBC", "reverse.result", {"reversal_id": "RV1", "debit_id": "DB1", "result": "REVERSED"}),
    ("boss.BJ", "credit.result", {"recharge_id": "RC1", "result": "OK"}),
    ("boss.GD", "recon.file", _file("CREDITS")),
    ("bank.CCB", "recon.file", _file("DEBITS")),
]  # fmt: skip


@pytest.mark.parametrize(("party", "msg_type", "body"), FLOW_4, ids=[f"{p}.{t}" for p, t, _ in FLOW_4])
async def test_a_valid_flow_4_message_is_answered_not_supported_until_flow_4_is_built(
    hub: Hub, probe: Probe, party: str, msg_type: str, body: dict[str, object]
) -> None:
    mid = await probe.publish(party, msg_type, body)

    await _refused(probe, mid, party, "NOT_SUPPORTED")
    told = await probe.expect("rejection", to(party, "message.rejected", message_id=mid))
    assert told.body["type"] == msg_type and "not handled by this hub yet" in told.body["errors"][0]
    assert not await hub.store.query("SELECT 1 FROM inbox WHERE message_id=?", (mid,))


@pytest.mark.parametrize(("party", "scope"), [("crm.GD", "DEBITS"), ("bank.ICBC", "CREDITS")])
async def test_a_recon_file_of_a_scope_its_sender_never_sends_is_invalid(
    probe: Probe, party: str, scope: str
) -> None:
    mid = await probe.publish(party, "recon.file", _file(scope))

    await _refused(probe, mid, party, "INVALID_MESSAGE")


async def test_a_refused_message_does_not_count_as_processed(probe: Probe) -> None:
    request = sign_request(fresh_phone())
    mid = await probe.publish("bank.ICBC", "sign.request", dict(request, channel="CARRIER_PIGEON"))
    await _refused(probe, mid, "bank.ICBC", "INVALID_MESSAGE")
    await probe.publish("bank.ICBC", "sign.request", request, message_id=mid)
    await probe.expect(
        "verify.request for the corrected message", to("crm.GD", "verify.request", phone=request["phone"])
    )
