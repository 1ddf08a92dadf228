"""Flow 2 end to end on the real broker and store: a bank signs a number through the hub."""

from __future__ import annotations

from hub.bootstrap import Hub
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.probe import Probe, to


async def _approved(probe: Probe, phone: str, bank: str = "ICBC") -> dict[str, object]:
    request = sign_request(phone)
    mid = await probe.publish(f"bank.{bank}", "sign.request", request)
    ask = await probe.expect("verify.request to crm.GD", to("crm.GD", "verify.request", phone=phone))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    answer = await probe.expect(
        "sign.response", to(f"bank.{bank}", "sign.response", request_id=request["request_id"])
    )
    assert answer.correlation_id == mid
    assert answer.body["result"] == "APPROVED"
    return request


async def test_a_signed_number_gets_an_active_agreement_and_its_crm_is_notified(
    hub: Hub, probe: Probe
) -> None:
    phone = fresh_phone()
    request = await _approved(probe, phone)
    conf = confirmed(request)
    cmid = await probe.publish("bank.ICBC", "sign.confirmed", conf)
    result = await probe.expect(
        "sign.result", to("bank.ICBC", "sign.result", request_id=request["request_id"])
    )
    assert result.correlation_id == cmid
    assert result.body["status"] == "ACTIVE" and result.body["agreement_version"] == 1
    notify = await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=phone))
    assert notify.body["agreement_id"] == result.body["agreement_id"]
    assert notify.body["account_last4"] == "3445"
    assert "account_no" not in notify.body and "id_no" not in notify.body
    assert notify.body["recharge_threshold"] == 1000 and notify.body["user_type"] == "PREPAID"


async def _sign(probe: Probe, phone: str, bank: str = "ICBC") -> dict[str, object]:
    request = await _approved(probe, phone, bank)
    await probe.publish(f"bank.{bank}", "sign.confirmed", confirmed(request))
    result = await probe.expect(
        "sign.result", to(f"bank.{bank}", "sign.result", request_id=request["request_id"])
    )
    assert result.body["status"] == "ACTIVE"
    return result.body


async def test_the_crm_sync_and_the_boss_relay_go_both_ways(probe: Probe) -> None:
    phone = fresh_phone()
    signed = await _sign(probe, phone)
    agreement_id = signed["agreement_id"]
    await probe.publish("crm.GD", "sign.synced", {"agreement_id": agreement_id, "result": "OK"})
    sync = {"agreement_id": agreement_id, "phone": phone, "action": "ADD", "user_type": "PREPAID",
            "recharge_threshold": 1000, "recharge_amount": 5000, "auto_pay": False}  # fmt: skip
    sync_mid = await probe.publish("crm.GD", "boss.sync", sync)
    relayed = await probe.expect(
        "agreement.sync to BOSS", to("boss.GD", "agreement.sync", agreement_id=agreement_id)
    )
    assert relayed.body == sync
    await probe.publish("boss.GD", "agreement.synced", {"agreement_id": agreement_id, "result": "OK"},
                        correlation_id=relayed.message_id)  # fmt: skip
    back = await probe.expect(
        "boss.synced to the CRM", to("crm.GD", "boss.synced", agreement_id=agreement_id)
    )
    assert back.body["result"] == "OK"
    assert back.correlation_id == sync_mid


async def test_a_number_with_an_active_agreement_is_refused_without_asking_the_crm(probe: Probe) -> None:
    phone = fresh_phone()
    await _sign(probe, phone)
    request = sign_request(phone)
    await probe.publish("bank.CCB", "sign.request", request)
    answer = await probe.expect(
        "sign.response", to("bank.CCB", "sign.response", request_id=request["request_id"])
    )
    assert answer.body["result"] == "REJECTED" and answer.body["reason_code"] == "ALREADY_SIGNED"
    assert len(probe.all(to("crm.GD", "verify.request", phone=phone))) == 1


async def test_a_number_of_an_unknown_segment_is_refused(probe: Probe) -> None:
    request = sign_request(fresh_phone("1500"))
    await probe.publish("bank.ICBC", "sign.request", request)
    answer = await probe.expect(
        "sign.response", to("bank.ICBC", "sign.response", request_id=request["request_id"])
    )
    assert answer.body["reason_code"] == "UNKNOWN_SEGMENT"
    assert not probe.all(lambda r: r.body.get("phone") == request["phone"] and r.type == "verify.request")


async def test_longest_prefix_and_overrides_route_to_the_right_crm(probe: Probe) -> None:
    for phone in (fresh_phone("1381234"), "13899990000"):
        await probe.publish("bank.ICBC", "sign.request", sign_request(phone))
        ask = await probe.expect(f"verify.request for {phone}", to("crm.BJ", "verify.request", phone=phone))
        assert ask.routing_key == "crm.BJ.verify.request"
