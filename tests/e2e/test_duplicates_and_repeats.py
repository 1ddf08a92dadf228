"""One ACTIVE agreement per number, the manual queue, and one effect per message however often sent."""

from __future__ import annotations

from hub.bootstrap import Hub
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.flows import approve
from tests.support.probe import Probe, to


async def _quiet(probe: Probe) -> None:
    """Everything the hub had to send so far has been sent: the CRM's marker refusal came back
    on the CRM's own queue after everything queued for it before."""
    mid = await probe.publish("crm.GD", "sign.synced", {"bad": True})
    await probe.expect("the marker's refusal", to("crm.GD", "message.rejected", message_id=mid))


async def test_a_second_confirmation_for_a_signed_number_goes_to_the_manual_queue(
    hub: Hub, probe: Probe
) -> None:
    phone = fresh_phone()
    first, second = await approve(probe, "ICBC", phone), await approve(probe, "CCB", phone)
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(first))
    active = await probe.expect("ACTIVE", to("bank.ICBC", "sign.result", request_id=first["request_id"]))
    second_mid = await probe.publish("bank.CCB", "sign.confirmed", confirmed(second))
    held = await probe.expect("MANUAL_REVIEW", to("bank.CCB", "sign.result", request_id=second["request_id"]))
    assert held.body["status"] == "MANUAL_REVIEW" and held.correlation_id == second_mid
    case = await probe.expect(
        "manual copy", lambda r: r.queue == f"{probe.prefix}.manual" and r.message_id == second_mid
    )
    assert case.type == "sign.confirmed"
    assert case.headers["x-signhub-reason"] == "DUPLICATE_AGREEMENT"
    assert case.headers["x-signhub-sender"] == "bank.CCB"
    assert case.headers["x-signhub-routing-key"] == "bank.CCB.sign.confirmed"
    assert case.headers["x-signhub-existing-agreement-id"] == active.body["agreement_id"]
    assert case.headers["x-signhub-case-id"].startswith("C")
    assert case.headers["x-signhub-error"]
    assert case.body["account_no"] == "622202*********3445"
    rows = await hub.store.query("SELECT status FROM agreements WHERE phone=? ORDER BY status", (phone,))
    assert rows == [{"status": "ACTIVE"}, {"status": "PENDING_REVIEW"}]
    await _quiet(probe)
    assert len(probe.all(to("crm.GD", "sign.notify", phone=phone))) == 1


async def test_the_same_message_three_times_has_one_effect_and_repeats_get_the_same_answer(
    probe: Probe,
) -> None:
    phone = fresh_phone()
    request = sign_request(phone)
    for _ in range(3):
        await probe.publish("bank.ICBC", "sign.request", request, message_id=f"req-{phone}")
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=phone))
    for _ in range(3):
        await probe.publish(
            "crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]), message_id=f"v-{phone}"
        )
    answers = await probe.expect_count(
        "approval", to("bank.ICBC", "sign.response", request_id=request["request_id"]), 1
    )
    await probe.publish("bank.ICBC", "sign.request", request, message_id=f"req-{phone}")
    conf = confirmed(request)
    for _ in range(3):
        await probe.publish("bank.ICBC", "sign.confirmed", conf, message_id=f"conf-{phone}")
    results = await probe.expect_count(
        "3 sign.result", to("bank.ICBC", "sign.result", request_id=request["request_id"]), 3
    )
    assert {r.message_id for r in results} == {results[0].message_id}
    await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=phone))
    await _quiet(probe)
    assert len(probe.all(to("crm.GD", "verify.request", phone=phone))) == 1
    assert len(probe.all(to("crm.GD", "sign.notify", phone=phone))) == 1
    # The repeat of the sign.request after the answer existed got a copy with the same message_id.
    copies = await probe.expect_count(
        "sign.response copy", to("bank.ICBC", "sign.response", request_id=request["request_id"]), 2
    )
    assert copies[0].message_id == copies[1].message_id == answers[0].message_id


async def test_the_same_confirmation_under_a_new_message_id_gets_the_latest_answer_again(
    probe: Probe,
) -> None:
    phone = fresh_phone()
    request = await approve(probe, "ICBC", phone)
    conf = confirmed(request)
    await probe.publish("bank.ICBC", "sign.confirmed", conf)
    first = await probe.expect("ACTIVE", to("bank.ICBC", "sign.result", request_id=request["request_id"]))
    await probe.publish("bank.ICBC", "sign.confirmed", conf)
    both = await probe.expect_count(
        "a copy", to("bank.ICBC", "sign.result", request_id=request["request_id"]), 2
    )
    assert both[1].message_id == first.message_id and both[1].body == first.body
    other = dict(conf, account_no="6222020200199999999")
    mid = await probe.publish("bank.ICBC", "sign.confirmed", other)
    mismatch = await probe.expect("REQUEST_MISMATCH", lambda r: r.correlation_id == mid)
    assert mismatch.body["status"] == "REJECTED" and mismatch.body["reason_code"] == "REQUEST_MISMATCH"
    await _quiet(probe)
    assert len(probe.all(to("crm.GD", "sign.notify", phone=phone))) == 1


async def test_a_confirmation_nobody_asked_for_is_unknown_request(probe: Probe) -> None:
    request = sign_request(fresh_phone(), request_id="never-requested")
    mid = await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    got = await probe.expect("UNKNOWN_REQUEST", lambda r: r.correlation_id == mid)
    assert got.body["reason_code"] == "UNKNOWN_REQUEST"


async def test_a_confirmation_with_other_content_than_its_request_is_request_mismatch(probe: Probe) -> None:
    request = await approve(probe, "ICBC", fresh_phone())
    for change in ({"account_no": "6222020200100000001"}, {"recharge_amount": 99}, {"auto_pay": True}):
        mid = await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request, **change))
        got = await probe.expect(f"REQUEST_MISMATCH for {change}", lambda r, m=mid: r.correlation_id == m)
        assert got.body["reason_code"] == "REQUEST_MISMATCH"


async def test_sign_failed_closes_the_request_without_an_answer(probe: Probe) -> None:
    request = await approve(probe, "ICBC", fresh_phone())
    failed_mid = await probe.publish(
        "bank.ICBC", "sign.failed", {"request_id": request["request_id"], "reason": "card frozen"}
    )
    mid = await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    got = await probe.expect("UNKNOWN_REQUEST", lambda r: r.correlation_id == mid)
    assert got.body["reason_code"] == "UNKNOWN_REQUEST"
    assert not probe.all(lambda r: r.correlation_id == failed_mid)
