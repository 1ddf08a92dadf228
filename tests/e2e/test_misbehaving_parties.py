"""Slow and misbehaving parties against the real hub on the real broker: the outcomes stay right.

The simulators (with their knobs) play a slow CRM, a CRM that answers twice, a CRM answering
after the timeout and a bank that sends every message twice; the probe plays the answers that
come out of order: an old verify_id after a newer flow for the same number, a confirmation
before the approval, two asks answered in reverse order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from contracts.routing import PartyKind
from hub.bootstrap import Hub, build_hub
from hub.messaging.topology import delete_topology
from hub.segments import SegmentTable
from simulators.bank import BankKnobs, BankSimulator
from simulators.crm import CrmKnobs, CrmSimulator
from simulators.fleet import Simulators
from simulators.recording import Received
from simulators.runner import start_simulators
from simulators.seed import build_world
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.hubrun import AMQP_URL, hub_settings
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker
WAIT_S = 20.0


@asynccontextmanager
async def _hub_and_sims(
    workdir: Path, settings: dict[str, Any], **knobs: Any
) -> AsyncIterator[tuple[Hub, Simulators]]:
    s = hub_settings(workdir, **settings)
    hub = await build_hub(s, with_http=False)
    await hub.start()
    try:
        world = build_world(
            5, s.banks, s.provinces, 8, segments=SegmentTable.load(s.segments, s.segment_overrides)
        )
        sims = await start_simulators(
            AMQP_URL, s.prefix, world, s.banks, s.provinces, workdir / "sms", **knobs
        )
        try:
            yield hub, sims
        finally:
            await sims.close()
    finally:
        await hub.stop()
        await delete_topology(AMQP_URL, hub.hub_names, hub.registry.parties(), len(s.retry_delays_s))


async def _sign(sims: Simulators, bank: str = "ICBC", province: str = "GD") -> tuple[str, str]:
    phone = sims.world.signable(province)[0].phone
    return phone, await sims.banks[bank].start_signing(phone, sims.world.usable_accounts(bank)[0])


async def _until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.1)  # polling the store: nothing announces "the hub took it"


async def _everything_said_to(*sims: BankSimulator | CrmSimulator) -> None:
    """Whatever the hub had to send these parties about the messages before has arrived: each sends
    a body that is not JSON, and the hub's refusal of it comes after (the hub takes its one inbound
    queue in order; each party's queue delivers in order)."""
    for sim in sims:
        mid, party, got = f"marker-{uuid.uuid4().hex[:8]}", sim.client.party, sim.recorder.received
        msg_type = "sign.request" if party.kind is PartyKind.BANK else "verify.response"
        await sim.client.publish_raw(f"{party}.{msg_type}", b"{marker, not json", message_id=mid, type=msg_type,
                                     content_type="application/json")  # fmt: skip

        def refused(mid: str = mid, got: list[Received] = got) -> bool:
            return any(r.correlation_id == mid and r.msg_type == "message.rejected" for r in got)

        await sim.recorder.wait_until(refused, f"the refusal of marker {mid}", WAIT_S)


async def _agreements(hub: Hub, phone: str) -> list[dict[str, Any]]:
    return await hub.store.query("SELECT status FROM agreements WHERE phone=?", (phone,))


async def _verify_answers_taken(hub: Hub, count: int) -> bool:
    rows = await hub.store.query("SELECT count(*) AS n FROM inbox WHERE type='verify.response'")
    return bool(rows[0]["n"] >= count)


async def test_a_slow_crm_answering_after_the_first_ask_timed_out_but_before_the_last_counts(
    tmp_path: Path,
) -> None:
    # Asks at 0, 2 and 4 s, the last timing out at 6 s; each answer comes 3 s after its ask.
    knobs = {"crm_knobs": {"GD": CrmKnobs(delay_s=3.0)}}
    async with _hub_and_sims(tmp_path, {"crm_timeout_s": 2.0, "crm_asks": 3}, **knobs) as (hub, sims):
        phone, rid = await _sign(sims)
        result = await sims.banks["ICBC"].wait_result(rid, WAIT_S)
        asks = sims.crms["GD"].recorder.of_type("verify.request")
        await _until("every ask's late answer taken", lambda: _verify_answers_taken(hub, len(asks)))

        assert result["status"] == "ACTIVE"
        assert len(asks) >= 2 and len({a.body["verify_id"] for a in asks}) == 1
        responses = sims.banks["ICBC"].recorder.of_type("sign.response")
        assert [r.body["result"] for r in responses] == ["APPROVED"]
        assert await _agreements(hub, phone) == [{"status": "ACTIVE"}]


async def test_a_crm_that_answers_twice_gets_one_approval_to_the_bank(tmp_path: Path) -> None:
    knobs = {"crm_knobs": {"GD": CrmKnobs(answer_twice=True)}}
    async with _hub_and_sims(tmp_path, {"crm_timeout_s": 30.0}, **knobs) as (hub, sims):
        phone, rid = await _sign(sims)
        result = await sims.banks["ICBC"].wait_result(rid, WAIT_S)
        await _until("both answers taken", lambda: _verify_answers_taken(hub, 2))

        assert result["status"] == "ACTIVE"
        assert len(sims.banks["ICBC"].recorder.of_type("sign.response")) == 1
        assert await _agreements(hub, phone) == [{"status": "ACTIVE"}]


async def test_a_crm_answering_after_the_last_ask_timed_out_changes_nothing(tmp_path: Path) -> None:
    # Asks at 0 and 1 s, the last timing out at 2 s; the answers come at 4 and 5 s.
    knobs = {"crm_knobs": {"GD": CrmKnobs(delay_s=4.0)}}
    async with _hub_and_sims(tmp_path, {"crm_timeout_s": 1.0, "crm_asks": 2}, **knobs) as (hub, sims):
        phone, rid = await _sign(sims)
        answer = await sims.banks["ICBC"].wait_response(rid, WAIT_S)
        await _until("the late answers taken", lambda: _verify_answers_taken(hub, 2))
        await _everything_said_to(sims.banks["ICBC"])

        assert answer["result"] == "REJECTED" and answer["reason_code"] == "CRM_TIMEOUT"
        assert len(sims.banks["ICBC"].recorder.of_type("sign.response")) == 1
        assert not sims.banks["ICBC"].recorder.of_type("sign.result")
        assert await _agreements(hub, phone) == []


async def test_a_bank_that_sends_every_message_twice_has_one_effect(tmp_path: Path) -> None:
    knobs = {"bank_knobs": {"ICBC": BankKnobs(send_twice=True)}}
    async with _hub_and_sims(tmp_path, {"crm_timeout_s": 30.0}, **knobs) as (hub, sims):
        phone, rid = await _sign(sims)
        result = await sims.banks["ICBC"].wait_result(rid, WAIT_S)
        await sims.crms["GD"].wait_agreement(phone, WAIT_S)
        await _until("both confirmations taken", lambda: _inbox_count(hub, "sign.confirmed", 1))
        await _everything_said_to(sims.banks["ICBC"], sims.crms["GD"])

        assert result["status"] == "ACTIVE"
        bank = sims.banks["ICBC"].recorder
        assert len(bank.of_type("sign.response")) == 1 and len(bank.of_type("sign.result")) == 1
        assert len(sims.crms["GD"].recorder.of_type("verify.request")) == 1
        assert len(sims.crms["GD"].recorder.of_type("sign.notify")) == 1
        assert await _agreements(hub, phone) == [{"status": "ACTIVE"}]
        assert sims.errors() == {}


async def _inbox_count(hub: Hub, msg_type: str, count: int) -> bool:
    rows = await hub.store.query("SELECT count(*) AS n FROM inbox WHERE type=?", (msg_type,))
    return bool(rows[0]["n"] >= count)


async def _quiet(probe: Probe) -> None:
    """The hub has taken everything sent before: a refusal sent last came back (one queue, in order)."""
    marker = await probe.publish("bank.ICBC", "sign.request", {"marker": True})
    await probe.expect("the marker's refusal", to("bank.ICBC", "message.rejected", message_id=marker))


async def test_an_answer_for_an_old_verify_id_after_a_newer_flow_of_the_number_changes_nothing(
    hub: Hub, probe: Probe
) -> None:
    phone = fresh_phone()
    old = sign_request(phone)
    await probe.publish("bank.ICBC", "sign.request", old)
    old_ask = await probe.expect("the old ask", to("crm.GD", "verify.request", phone=phone))
    await probe.expect(
        "CRM_TIMEOUT", to("bank.ICBC", "sign.response", request_id=old["request_id"]), timeout=8
    )
    new = sign_request(phone)
    await probe.publish("bank.CCB", "sign.request", new)
    old_id = old_ask.body["verify_id"]
    new_ask = await probe.expect("the new ask", lambda r: r.routing_key == "crm.GD.verify.request"
                                 and r.body["phone"] == phone and r.body["verify_id"] != old_id)  # fmt: skip
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(new_ask.body["verify_id"], 2000, 5000))
    approval = await probe.expect("approval", to("bank.CCB", "sign.response", request_id=new["request_id"]))
    await probe.publish("crm.GD", "verify.response", {"verify_id": old_id, "result": "REJECTED",
                                                       "reason_code": "BLACKLISTED"})  # fmt: skip
    await probe.publish("bank.CCB", "sign.confirmed", confirmed(new))
    result = await probe.expect("sign.result", to("bank.CCB", "sign.result", request_id=new["request_id"]))
    await _quiet(probe)

    assert approval.body["result"] == "APPROVED" and approval.body["recharge_threshold"] == 2000
    assert result.body["status"] == "ACTIVE"
    assert len(probe.all(to("bank.ICBC", "sign.response", request_id=old["request_id"]))) == 1
    assert len(probe.all(to("bank.CCB", "sign.response", request_id=new["request_id"]))) == 1
    assert await _agreements(hub, phone) == [{"status": "ACTIVE"}]


async def test_a_confirmation_before_the_approval_is_unknown_request_and_the_flow_goes_on(
    hub: Hub, probe: Probe
) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    early = await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    refused = await probe.expect("the early confirmation's answer", lambda r: r.correlation_id == early)
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    approval = await probe.expect(
        "approval", to("bank.ICBC", "sign.response", request_id=request["request_id"])
    )
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    results = await probe.expect_count("two sign.results", to("bank.ICBC", "sign.result",
                                                              request_id=request["request_id"]), 2)  # fmt: skip

    assert refused.type == "sign.result"
    assert refused.body["status"] == "REJECTED" and refused.body["reason_code"] == "UNKNOWN_REQUEST"
    assert approval.body["result"] == "APPROVED"
    assert results[-1].body["status"] == "ACTIVE"
    assert await _agreements(hub, request["phone"]) == [{"status": "ACTIVE"}]


async def test_two_asks_answered_in_reverse_order_each_reach_their_own_bank_with_their_own_terms(
    probe: Probe,
) -> None:
    first, second = sign_request(fresh_phone()), sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", first)
    await probe.publish("bank.CCB", "sign.request", second)
    ask1 = await probe.expect("ask 1", to("crm.GD", "verify.request", phone=first["phone"]))
    ask2 = await probe.expect("ask 2", to("crm.GD", "verify.request", phone=second["phone"]))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask2.body["verify_id"], 3000, 10000))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask1.body["verify_id"], 1000, 5000))
    got1 = await probe.expect("answer 1", to("bank.ICBC", "sign.response", request_id=first["request_id"]))
    got2 = await probe.expect("answer 2", to("bank.CCB", "sign.response", request_id=second["request_id"]))

    assert (got1.body["recharge_threshold"], got1.body["recharge_amount"]) == (1000, 5000)
    assert (got2.body["recharge_threshold"], got2.body["recharge_amount"]) == (3000, 10000)
