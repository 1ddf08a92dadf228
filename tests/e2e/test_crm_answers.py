"""The home CRM's answers: every refusal reaches the bank unchanged; silence and lateness."""

from __future__ import annotations

import pytest

from hub.bootstrap import Hub
from tests.support.data import fresh_phone, sign_request, verify_ok_prepaid
from tests.support.probe import Probe, to


@pytest.mark.parametrize(
    "reason", ["NUMBER_INACTIVE", "BLACKLISTED", "EXCLUSIVE_SERVICE", "NOT_SUBSCRIBER", "ALREADY_SIGNED"]
)
async def test_each_crm_refusal_reaches_the_bank_with_its_reason(probe: Probe, reason: str) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    answer = {"verify_id": ask.body["verify_id"], "result": "REJECTED", "reason_code": reason}
    if reason == "ALREADY_SIGNED":
        answer["existing_agreement_id"] = "CRM-AG-1"
    await probe.publish("crm.GD", "verify.response", answer, correlation_id=ask.message_id)
    got = await probe.expect(
        "sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"])
    )
    assert got.body["result"] == "REJECTED" and got.body["reason_code"] == reason


async def test_a_crm_answering_for_another_province_is_refused_and_the_flow_waits(probe: Probe) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    intruder = await probe.publish("crm.BJ", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    rejected = await probe.expect(
        "message.rejected to crm.BJ", to("crm.BJ", "message.rejected", message_id=intruder)
    )
    assert rejected.body["reason_code"] == "UNAUTHORIZED_SENDER"
    dead = await probe.expect("dead copy", lambda r: r.queue.endswith(".dead") and r.message_id == intruder)
    assert dead.headers["x-signhub-reason"] == "UNAUTHORIZED_SENDER"
    assert dead.headers["x-signhub-sender"] == "crm.BJ"
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    got = await probe.expect(
        "sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"])
    )
    assert got.body["result"] == "APPROVED"


async def test_a_silent_crm_is_asked_again_then_the_bank_gets_crm_timeout(probe: Probe) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    asks = await probe.expect_count("2 asks", to("crm.GD", "verify.request", phone=request["phone"]), 2, 5.0)
    assert asks[0].body["verify_id"] == asks[1].body["verify_id"]
    assert asks[0].message_id != asks[1].message_id
    got = await probe.expect("sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"]),
                             timeout=5.0)  # fmt: skip
    assert got.body["reason_code"] == "CRM_TIMEOUT"


async def test_an_answer_to_an_earlier_ask_counts_while_the_last_ask_is_open(probe: Probe) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    asks = await probe.expect_count("2 asks", to("crm.GD", "verify.request", phone=request["phone"]), 2, 5.0)
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(asks[0].body["verify_id"]),
                        correlation_id=asks[0].message_id)  # fmt: skip
    got = await probe.expect(
        "sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"])
    )
    assert got.body["result"] == "APPROVED"


async def test_a_late_crm_answer_after_the_timeout_changes_nothing(hub: Hub, probe: Probe) -> None:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    timeout = await probe.expect("CRM_TIMEOUT", to("bank.ICBC", "sign.response", request_id=request["request_id"]),
                                 timeout=5.0)  # fmt: skip
    assert timeout.body["reason_code"] == "CRM_TIMEOUT"
    late = await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    # One queue, consumed in order: once a marker sent after the late answer is refused, the late
    # answer has been taken.
    marker = await probe.publish("bank.ICBC", "sign.request", {"bad": True})
    await probe.expect("the marker's refusal", to("bank.ICBC", "message.rejected", message_id=marker))
    taken = await hub.store.query("SELECT type FROM inbox WHERE sender='crm.GD' AND message_id=?", (late,))
    assert taken == [{"type": "verify.response"}]
    assert len(probe.all(to("bank.ICBC", "sign.response", request_id=request["request_id"]))) == 1
    assert not probe.all(lambda r: r.message_id == late and r.queue.endswith(".dead"))
