"""Flow 1's pure decisions and the hub's web tokens, without broker, store or HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from contracts.bank import SignConfirmed
from contracts.common import Channel
from contracts.web import SessionRequest
from hub.agreements import Agreement
from hub.flows import operator_signing as flow1
from hub.sessions import SessionState, SigningSession
from hub.web_tokens import Claims, Purpose, TokenError, sign, verify
from tests.support.data import CARD
from tests.support.records import NOW, account, parse

KEY = b"k" * 32
WINDOW = timedelta(minutes=30)


def request(**over: Any) -> SessionRequest:
    body = {"phone": "13800138000", "province": "GD", "bank": "ICBC", "user_type": "PREPAID",
            "recharge_threshold": 1000, "recharge_amount": 5000, "auto_pay_allowed": False,
            "return_url": "http://hall/result"} | over  # fmt: skip
    return parse(SessionRequest, body)


def opened(**over: Any) -> SigningSession | flow1.Refusal:
    args = {"hall": "web", "session_id": "S1", "nonce": "n1", "now": NOW, "window": WINDOW, "bank_known": True,
            "home": "GD", "already_active": False} | over  # fmt: skip
    return flow1.open_session(request(), **args)


def at_bank() -> SigningSession:
    session = opened()
    assert isinstance(session, SigningSession)
    return replace(session, state=SessionState.AT_BANK, nonce=None)


def confirmed(**over: Any) -> SignConfirmed:
    body = {"session_id": "S1", "bank_agreement_no": "BA1", "phone": "13800138000", "account_no": CARD,
            "account_type": "DEBIT", "signed_at": "2026-11-26T10:00:00+08:00"} | over  # fmt: skip
    return parse(SignConfirmed, body)


def decide(session: SigningSession | None, conf: SignConfirmed, bank: str = "ICBC", **over: Any) -> Any:
    args = {"bank": bank, "message_id": "m1", "account": account(), "now": NOW, "agreement_id": "A1"} | over
    return flow1.receive_confirmation(session, conf, **args)


@pytest.mark.parametrize(
    ("over", "code"),
    [({"bank_known": False}, "UNKNOWN_BANK"), ({"home": None}, "UNKNOWN_SEGMENT"), ({"home": "BJ"}, "PROVINCE_MISMATCH"),
     ({"already_active": True}, "ALREADY_SIGNED")],
)  # fmt: skip
def test_a_session_is_refused_for_what_the_hub_itself_knows(over: dict[str, Any], code: str) -> None:
    refusal = opened(**over)
    assert isinstance(refusal, flow1.Refusal) and refusal.code == code


def test_the_entry_link_works_once_and_the_bank_token_only_for_the_sessions_bank() -> None:
    session = opened()
    assert isinstance(session, SigningSession)
    claims = Claims("S1", Purpose.ENTER, "n1", NOW + timedelta(minutes=5))
    entered = flow1.enter(session, claims, new_nonce="n2")
    assert isinstance(entered, SigningSession) and entered.state is SessionState.ENTERED
    again = flow1.enter(entered, claims, new_nonce="n3")
    assert isinstance(again, flow1.Refusal) and again.code == "USED"
    bank_claims = Claims("S1", Purpose.BANK, "n2", NOW + timedelta(minutes=5))
    wrong = flow1.redeem(entered, bank_claims, bank="CCB")
    assert isinstance(wrong, flow1.Refusal) and wrong.code == "WRONG_BANK"
    redeemed = flow1.redeem(entered, bank_claims, bank="ICBC")
    assert isinstance(redeemed, SigningSession) and redeemed.state is SessionState.AT_BANK


def test_tokens_refuse_tampering_expiry_and_the_wrong_purpose() -> None:
    token = sign(KEY, Claims("S1", Purpose.ENTER, "n1", NOW + timedelta(minutes=5)))
    assert verify(KEY, token, Purpose.ENTER, NOW).session_id == "S1"
    for bad, purpose, when, code in [
        (token[:-1] + ("A" if token[-1] != "A" else "B"), Purpose.ENTER, NOW, "TAMPERED"),
        (token, Purpose.ENTER, NOW + timedelta(minutes=5), "EXPIRED"),
        (token, Purpose.BANK, NOW, "WRONG_PURPOSE"),
        ("garbage", Purpose.ENTER, NOW, "TAMPERED"),
    ]:
        with pytest.raises(TokenError) as refused:
            verify(KEY, bad, purpose, when)
        assert refused.value.code == code


def test_a_confirmation_at_the_bank_page_makes_an_operator_web_agreement() -> None:
    agreement = decide(at_bank(), confirmed())
    assert isinstance(agreement, Agreement)
    assert agreement.channel is Channel.OPERATOR_WEB and agreement.flow_key == "session:S1"
    assert agreement.recharge_threshold == 1000 and agreement.recharge_amount == 5000
    step = flow1.record_agreement(at_bank(), agreement, "m1", "fp")
    result, notify = step.out
    assert result.body.session_id == "S1" and result.body.request_id is None and result.correlation_id == "m1"
    assert notify.type == "sign.notify" and notify.body.channel is Channel.OPERATOR_WEB
    assert step.session is not None and step.session.state is SessionState.ACTIVE


@pytest.mark.parametrize(
    ("session", "conf", "bank", "code"),
    [(None, {}, "ICBC", "UNKNOWN_REQUEST"), ("at_bank", {}, "CCB", "UNKNOWN_REQUEST"),
     ("created", {}, "ICBC", "UNKNOWN_REQUEST"), ("at_bank", {"phone": "13800138001"}, "ICBC", "REQUEST_MISMATCH"),
     ("at_bank", {"recharge_amount": 9900}, "ICBC", "REQUEST_MISMATCH")],
)  # fmt: skip
def test_a_confirmation_is_refused_for_an_unknown_closed_or_different_session(
    session: str | None, conf: dict[str, Any], bank: str, code: str
) -> None:
    chosen = {"at_bank": at_bank(), "created": opened(), None: None}[session]
    step = decide(chosen, confirmed(**conf), bank=bank)  # type: ignore[arg-type]
    assert isinstance(step, flow1.SessionStep) and step.out[0].body.reason_code == code


def test_a_session_past_30_minutes_takes_no_confirmation_and_expires() -> None:
    late = NOW + WINDOW
    step = decide(at_bank(), confirmed(), now=late)
    assert step.out[0].body.reason_code == "UNKNOWN_REQUEST"
    expired = flow1.expire(at_bank(), late).session
    assert expired is not None and expired.state is SessionState.EXPIRED


def test_the_same_confirmation_again_gets_a_copy_of_the_answer() -> None:
    agreement = decide(at_bank(), confirmed())
    fp = flow1.flow2.confirmation_fingerprint(confirmed(), account().fingerprint)
    done = flow1.record_agreement(at_bank(), agreement, "m1", fp).session
    repeat = decide(done, confirmed(), message_id="m2")
    assert repeat.copy_latest == ("bank.ICBC.sign.result", "m1")
    changed = decide(done, confirmed(bank_agreement_no="BA2"), message_id="m3")
    assert changed.out[0].body.reason_code == "REQUEST_MISMATCH"


# --- the notice of a bank that tells the web hall through the hub ---------------------------


def test_a_banks_notice_is_taken_once_for_a_session_at_its_page_or_later() -> None:
    taken = flow1.take_notice(at_bank(), bank="ICBC", result="SIGNED")
    assert isinstance(taken, SigningSession) and taken.notice == "SIGNED"
    again = flow1.take_notice(taken, bank="ICBC", result="FAILED")
    assert isinstance(again, flow1.Refusal) and again.code == "NOTICE_TAKEN"
    active = flow1.take_notice(replace(at_bank(), state=SessionState.ACTIVE), bank="ICBC", result="SIGNED")
    assert isinstance(active, SigningSession)


@pytest.mark.parametrize(("state", "bank", "code"), [
    (SessionState.CREATED, "ICBC", "UNKNOWN_SESSION"), (SessionState.ENTERED, "ICBC", "UNKNOWN_SESSION"),
    (SessionState.AT_BANK, "CCB", "UNKNOWN_SESSION"), (SessionState.EXPIRED, "ICBC", "EXPIRED"),
])  # fmt: skip
def test_a_notice_before_the_bank_page_of_another_bank_or_after_expiry_is_refused(
    state: SessionState, bank: str, code: str
) -> None:
    refused = flow1.take_notice(replace(at_bank(), state=state), bank=bank, result="SIGNED")
    assert isinstance(refused, flow1.Refusal) and refused.code == code
    assert flow1.take_notice(None, bank=bank, result="SIGNED") == flow1.Refusal(
        "UNKNOWN_SESSION", f"bank {bank} has no session at its page with this id")  # fmt: skip
