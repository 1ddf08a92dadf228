"""The life of an agreement after signing: unsign and modify from either side, refusals, races."""

from __future__ import annotations

from typing import Any

from hub.bootstrap import Hub
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.flows import approve
from tests.support.probe import Probe, to


async def _signed(probe: Probe, bank: str = "ICBC", phone: str | None = None, *, auto_pay_allowed: bool = False
                  ) -> dict[str, Any]:  # fmt: skip
    """A fresh number signed at `bank`; returns the sign.result body plus phone and bank_agreement_no."""
    phone = phone or fresh_phone()
    request = await approve(probe, bank, phone, auto_pay_allowed=auto_pay_allowed)
    conf = confirmed(request)
    await probe.publish(f"bank.{bank}", "sign.confirmed", conf)
    result = await probe.expect("ACTIVE", to(f"bank.{bank}", "sign.result", request_id=request["request_id"]))
    assert result.body["status"] == "ACTIVE"
    return dict(result.body, phone=phone)


async def _answer(probe: Probe, mid: str) -> dict[str, Any]:
    return (await probe.expect(f"answer to {mid}", lambda r: r.correlation_id == mid)).body


async def test_a_bank_unsign_cancels_the_agreement_and_tells_the_crm(hub: Hub, probe: Probe) -> None:
    a = await _signed(probe)
    mid = await probe.publish("bank.ICBC", "unsign.request", {"bank_agreement_no": a["bank_agreement_no"],
                                                              "phone": a["phone"], "agreement_version": 1})  # fmt: skip
    answer = await _answer(probe, mid)
    assert answer == {"bank_agreement_no": a["bank_agreement_no"], "result": "OK", "agreement_version": 2}
    told = await probe.expect("unsign.notify", to("crm.GD", "unsign.notify", agreement_id=a["agreement_id"]))
    assert told.body["agreement_version"] == 2 and told.body["reason_code"] == "CANCELLED_BY_SUBSCRIBER"
    rows = await hub.store.query(
        "SELECT status, version FROM agreements WHERE agreement_id=?", (a["agreement_id"],)
    )
    assert rows == [{"status": "CANCELLED", "version": 2}]


async def test_a_crm_unsign_by_phone_cancels_and_tells_the_bank(probe: Probe) -> None:
    a = await _signed(probe, "CCB")
    mid = await probe.publish("crm.GD", "unsign.request", {"phone": a["phone"]})
    answer = await _answer(probe, mid)
    assert (
        answer["result"] == "OK"
        and answer["agreement_id"] == a["agreement_id"]
        and answer["agreement_version"] == 2
    )
    notice = await probe.expect(
        "unsign.notice", to("bank.CCB", "unsign.notice", agreement_id=a["agreement_id"])
    )
    assert notice.body["bank_agreement_no"] == a["bank_agreement_no"]
    assert notice.body["reason_code"] == "CANCELLED_BY_SUBSCRIBER"


async def test_an_unsign_repeated_is_answered_ok_and_changes_nothing_more(hub: Hub, probe: Probe) -> None:
    a = await _signed(probe)
    body = {"bank_agreement_no": a["bank_agreement_no"], "phone": a["phone"]}
    first = await _answer(probe, await probe.publish("bank.ICBC", "unsign.request", body))
    again = await _answer(
        probe, await probe.publish("bank.ICBC", "unsign.request", dict(body, agreement_version=1))
    )
    assert first["result"] == again["result"] == "OK" and again["agreement_version"] == 2
    history = await hub.store.query("SELECT change FROM agreement_history WHERE agreement_id=? ORDER BY id",
                                    (a["agreement_id"],))  # fmt: skip
    assert [h["change"] for h in history] == ["SIGN", "UNSIGN"]


async def test_an_unknown_agreement_is_refused(probe: Probe) -> None:
    bank = await _answer(probe, await probe.publish("bank.ICBC", "unsign.request",
                                                    {"bank_agreement_no": "NOPE", "phone": fresh_phone()}))  # fmt: skip
    crm = await _answer(probe, await probe.publish("crm.GD", "modify.request", {"phone": fresh_phone(),
                                                                                "recharge_amount": 2000}))  # fmt: skip
    assert bank["reason_code"] == crm["reason_code"] == "UNKNOWN_AGREEMENT"


async def test_a_cancelled_number_can_sign_again(probe: Probe) -> None:
    a = await _signed(probe)
    await _answer(probe, await probe.publish("crm.GD", "unsign.request", {"phone": a["phone"]}))
    again = await _signed(probe, "CCB", a["phone"])
    assert again["agreement_id"] != a["agreement_id"] and again["agreement_version"] == 1


async def test_a_bank_modify_applies_the_terms_and_tells_the_crm(probe: Probe) -> None:
    a = await _signed(probe)
    mid = await probe.publish("bank.ICBC", "modify.request", {"bank_agreement_no": a["bank_agreement_no"],
                              "phone": a["phone"], "agreement_version": 1, "recharge_amount": 8000})  # fmt: skip
    assert (await _answer(probe, mid)) == {"bank_agreement_no": a["bank_agreement_no"], "result": "OK",
                                           "agreement_version": 2}  # fmt: skip
    told = await probe.expect("modify.notify", to("crm.GD", "modify.notify", agreement_id=a["agreement_id"]))
    assert told.body["recharge_amount"] == 8000 and told.body["recharge_threshold"] == 1000
    assert told.body["agreement_version"] == 2


async def test_a_crm_modify_applies_the_terms_and_tells_the_bank(probe: Probe) -> None:
    a = await _signed(probe, auto_pay_allowed=True)
    mid = await probe.publish("crm.GD", "modify.request", {"phone": a["phone"], "agreement_id": a["agreement_id"],
                                                           "recharge_threshold": 2000, "auto_pay": True})  # fmt: skip
    answer = await _answer(probe, mid)
    assert answer["result"] == "OK" and answer["agreement_version"] == 2
    notice = await probe.expect(
        "modify.notice", to("bank.ICBC", "modify.notice", agreement_id=a["agreement_id"])
    )
    assert notice.body["recharge_threshold"] == 2000 and notice.body["auto_pay"] is True


async def test_each_invalid_modify_is_refused_with_a_reason(probe: Probe) -> None:
    a = await _signed(probe)
    base = {"bank_agreement_no": a["bank_agreement_no"], "phone": a["phone"]}
    for change in ({"recharge_amount": 10}, {"recharge_amount": 10_000_000}, {"recharge_threshold": 999_999},
                   {"auto_pay": True}):  # fmt: skip
        answer = await _answer(probe, await probe.publish("bank.ICBC", "modify.request", base | change))
        assert answer["result"] == "REJECTED" and answer["reason_code"] == "OTHER" and answer["reason"], (
            change
        )
    other = await _answer(probe, await probe.publish("bank.ICBC", "modify.request",
                                                     dict(base, phone=fresh_phone(), recharge_amount=2000)))  # fmt: skip
    assert other["reason_code"] == "REQUEST_MISMATCH"


async def test_two_modifies_based_on_one_version_apply_once_and_the_second_is_stale(probe: Probe) -> None:
    a = await _signed(probe)
    base = {"bank_agreement_no": a["bank_agreement_no"], "phone": a["phone"], "agreement_version": 1}
    first = await probe.publish("bank.ICBC", "modify.request", base | {"recharge_amount": 6000})
    second = await probe.publish("crm.GD", "modify.request", {"phone": a["phone"], "agreement_version": 1,
                                                              "recharge_amount": 7000})  # fmt: skip
    answers = [await _answer(probe, first), await _answer(probe, second)]
    assert sorted(x["result"] for x in answers) == ["OK", "REJECTED"]
    assert [x.get("reason_code") for x in answers if x["result"] == "REJECTED"] == ["STALE_CHANGE"]


async def test_a_modify_after_an_unsign_is_refused_and_never_applied(hub: Hub, probe: Probe) -> None:
    a = await _signed(probe)
    await _answer(probe, await probe.publish("crm.GD", "unsign.request", {"phone": a["phone"]}))
    base = {"bank_agreement_no": a["bank_agreement_no"], "phone": a["phone"], "recharge_amount": 6000}
    stale = await _answer(
        probe, await probe.publish("bank.ICBC", "modify.request", base | {"agreement_version": 1})
    )
    blind = await _answer(probe, await probe.publish("bank.ICBC", "modify.request", base))
    assert stale["reason_code"] == "STALE_CHANGE" and blind["reason_code"] == "UNKNOWN_AGREEMENT"
    rows = await hub.store.query("SELECT recharge_amount, status FROM agreements WHERE agreement_id=?",
                                 (a["agreement_id"],))  # fmt: skip
    assert rows == [{"recharge_amount": 5000, "status": "CANCELLED"}]


async def test_an_unsign_racing_its_confirmation_resolves_to_one_state(probe: Probe) -> None:
    phone = fresh_phone()
    request = sign_request(phone)
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=phone))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("approval", to("bank.ICBC", "sign.response", request_id=request["request_id"]))
    conf = confirmed(request)
    early = await probe.publish("bank.ICBC", "unsign.request", {"bank_agreement_no": conf["bank_agreement_no"],
                                                                "phone": phone})  # fmt: skip
    await probe.publish("bank.ICBC", "sign.confirmed", conf)
    late = await probe.publish("bank.ICBC", "unsign.request", {"bank_agreement_no": conf["bank_agreement_no"],
                                                               "phone": phone})  # fmt: skip
    assert (await _answer(probe, early))["reason_code"] == "UNKNOWN_AGREEMENT"
    assert (await _answer(probe, late))["result"] == "OK"
    await probe.expect("unsign.notify", to("crm.GD", "unsign.notify", phone=phone))


async def test_a_held_confirmation_cancelled_by_its_bank_closes_the_case_with_one_more_result(
    hub: Hub, probe: Probe
) -> None:
    phone = fresh_phone()
    requests = {bank: await approve(probe, bank, phone) for bank in ("ICBC", "CCB")}
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(requests["ICBC"]))
    await probe.expect("ACTIVE", to("bank.ICBC", "sign.result", request_id=requests["ICBC"]["request_id"]))
    held = confirmed(requests["CCB"])
    held_mid = await probe.publish("bank.CCB", "sign.confirmed", held)
    await probe.expect("MANUAL_REVIEW", to("bank.CCB", "sign.result", status="MANUAL_REVIEW"))
    mid = await probe.publish("bank.CCB", "unsign.request", {"bank_agreement_no": held["bank_agreement_no"],
                                                             "phone": phone})  # fmt: skip
    assert (await _answer(probe, mid))["result"] == "OK"
    final = await probe.expect("the one more sign.result", to("bank.CCB", "sign.result", status="REJECTED",
                                                               request_id=requests["CCB"]["request_id"]))  # fmt: skip
    assert final.correlation_id == held_mid and final.body["reason_code"] == "CANCELLED_BY_SUBSCRIBER"
    cases = await hub.store.query("SELECT state FROM cases WHERE phone=?", (phone,))
    assert cases == [{"state": "WITHDRAWN"}]
    rows = await hub.store.query("SELECT bank, status FROM agreements WHERE phone=? ORDER BY bank", (phone,))
    assert rows == [{"bank": "CCB", "status": "CANCELLED"}, {"bank": "ICBC", "status": "ACTIVE"}]
    assert not probe.all(to("crm.GD", "unsign.notify", phone=phone))
