"""Flow 2's pure decisions (hub/flows/bank_signing.py): no broker, no disk, a fixed `now`.

Each test gives a step the state the shell would load and checks the new state and the messages
it asks to send, the way DOMAIN.md tells flow 2.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from contracts.bank import SignConfirmed, SignRequest, SignResponse, SignResult
from contracts.common import AgreementState, Channel, Decision, ReasonCode, UserType
from contracts.crm import SignNotify, VerifyRequest, VerifyResponse
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement, AgreementStatus, FlowState, SigningFlow
from hub.flows import bank_signing as flow2
from hub.flows.common import Step
from hub.outgoing import Outgoing
from tests.support.data import confirmed, sign_request
from tests.support.records import NOW, POSTPAID, PREPAID, TIMING, account, ids, parse, signing_flow

ICBC = Party(PartyKind.BANK, "ICBC")
CRM_GD = Party(PartyKind.CRM, "GD")
PHONE = "13800138000"
NOTHING = Step()


def _request(**over: Any) -> SignRequest:
    return parse(SignRequest, sign_request(PHONE, request_id="R1", **over))


def _receive_request(
    req: SignRequest, *, province: str | None = "GD", already_active: bool = False,
    existing: SigningFlow | None = None, message_id: str = "m-request", request_fingerprint: str = "fp-request",
) -> Step:  # fmt: skip
    return flow2.receive_sign_request(
        req, bank="ICBC", message_id=message_id, province=province, already_active=already_active,
        existing=existing, account=account(), id_encrypted="enc-id-1",
        request_fingerprint=request_fingerprint, now=NOW, new_id=ids(), timing=TIMING,
    )  # fmt: skip


def _only(step: Step) -> Outgoing:
    assert len(step.out) == 1, f"expected exactly one message, got {step.out}"
    return step.out[0]


def _answer(step: Step) -> SignResponse:
    out = _only(step)
    assert (out.to, out.type) == (ICBC, "sign.response")
    assert isinstance(out.body, SignResponse)
    return out.body


def _result(out: Outgoing) -> SignResult:
    assert (out.to, out.type) == (ICBC, "sign.result")
    assert isinstance(out.body, SignResult)
    return out.body


# --- receive_sign_request ------------------------------------------------------------------


def test_a_number_of_no_known_segment_is_refused_unknown_segment_in_answer_to_the_request() -> None:
    step = _receive_request(_request(), province=None)

    answer = _answer(step)
    assert answer.result is Decision.REJECTED and answer.reason_code is ReasonCode.UNKNOWN_SEGMENT
    assert answer.request_id == "R1"
    assert step.out[0].correlation_id == "m-request"
    assert step.flow is not None and step.flow.state is FlowState.REJECTED
    assert step.flow.reason_code == "UNKNOWN_SEGMENT" and step.flow.deadline is None


def test_a_number_that_already_has_an_active_agreement_is_refused_without_asking_the_crm() -> None:
    step = _receive_request(_request(), already_active=True)

    answer = _answer(step)
    assert answer.result is Decision.REJECTED and answer.reason_code is ReasonCode.ALREADY_SIGNED
    assert step.out[0].correlation_id == "m-request"
    assert all(out.to.kind is not PartyKind.CRM for out in step.out)
    assert step.flow is not None and step.flow.state is FlowState.REJECTED


def test_a_new_request_asks_the_home_crm_once_and_starts_the_answer_timer() -> None:
    step = _receive_request(_request(channel="COUNTER"))

    assert step.flow is not None
    assert step.flow.state is FlowState.VERIFYING
    assert step.flow.verify_id == "V1" and step.flow.asks == 1
    assert step.flow.deadline == NOW + timedelta(seconds=30)
    assert step.flow.key == "ICBC|R1" and step.flow.request_message_id == "m-request"
    ask = _only(step)
    assert (ask.to, ask.type) == (CRM_GD, "verify.request")
    assert ask.body == VerifyRequest(
        verify_id="V1",
        phone=PHONE,
        bank_code="ICBC",
        channel=Channel.COUNTER,
        account_type=account().account_type,
    )
    assert "account_no" not in ask.body.model_dump() and "id_no" not in ask.body.model_dump()


def test_a_faithful_repeat_of_a_request_asks_for_a_copy_of_the_first_answer_and_changes_nothing() -> None:
    first = signing_flow(FlowState.APPROVED)

    step = _receive_request(_request(), existing=first, message_id="m-repeat")

    assert step.flow is None and step.out == []
    assert step.copy_latest == ("bank.ICBC.sign.response", "m-request")


def test_a_repeat_of_a_request_id_with_other_content_is_refused_request_mismatch() -> None:
    first = signing_flow(FlowState.APPROVED)

    step = _receive_request(
        _request(), existing=first, message_id="m-other", request_fingerprint="fp-changed"
    )

    answer = _answer(step)
    assert answer.result is Decision.REJECTED and answer.reason_code is ReasonCode.REQUEST_MISMATCH
    assert step.out[0].correlation_id == "m-other"
    assert step.flow is None, "the first request's flow must stay as it was"
    assert step.copy_latest is None


# --- receive_verify_response ---------------------------------------------------------------


def _verify(**body: Any) -> VerifyResponse:
    return parse(VerifyResponse, {"verify_id": "V1", **body})


def test_a_prepaid_ok_approves_the_request_and_gives_the_bank_the_crm_terms() -> None:
    resp = _verify(result="OK", user_type="PREPAID", recharge_threshold=1000, recharge_amount=5000,
                   auto_pay_allowed=False)  # fmt: skip

    step = flow2.receive_verify_response(signing_flow(), resp, NOW, TIMING)

    assert step.flow is not None and step.flow.state is FlowState.APPROVED
    assert step.flow.terms == PREPAID and step.flow.approved_at == NOW and step.flow.deadline is None
    answer = _answer(step)
    assert step.out[0].correlation_id == "m-request"
    assert answer == SignResponse(
        request_id="R1", result=Decision.APPROVED, user_type=UserType.PREPAID, recharge_threshold=1000,
        recharge_amount=5000, auto_pay_allowed=False,
    )  # fmt: skip


def test_a_postpaid_ok_approves_without_recharge_amounts_even_if_the_crm_sent_some() -> None:
    resp = _verify(result="OK", user_type="POSTPAID", recharge_threshold=1, recharge_amount=2,
                   auto_pay_allowed=True)  # fmt: skip

    step = flow2.receive_verify_response(signing_flow(), resp, NOW, TIMING)

    assert step.flow is not None and step.flow.terms == POSTPAID
    answer = _answer(step)
    assert answer.result is Decision.APPROVED and answer.user_type is UserType.POSTPAID
    assert answer.recharge_threshold is None and answer.recharge_amount is None
    assert answer.auto_pay_allowed is True


@pytest.mark.parametrize(
    "reason",
    [ReasonCode.ALREADY_SIGNED, ReasonCode.NUMBER_INACTIVE, ReasonCode.BLACKLISTED,
     ReasonCode.EXCLUSIVE_SERVICE, ReasonCode.NOT_SUBSCRIBER, ReasonCode.OTHER],
)  # fmt: skip
def test_a_crm_refusal_reaches_the_bank_with_the_crm_reason_code_unchanged(reason: ReasonCode) -> None:
    resp = _verify(result="REJECTED", reason_code=reason.value, existing_agreement_id="A-old")

    step = flow2.receive_verify_response(signing_flow(), resp, NOW, TIMING)

    answer = _answer(step)
    assert answer.result is Decision.REJECTED and answer.reason_code is reason
    assert answer.user_type is None and answer.auto_pay_allowed is None
    assert step.out[0].correlation_id == "m-request"
    assert step.flow is not None and step.flow.state is FlowState.REJECTED
    assert step.flow.reason_code == reason.value


@pytest.mark.parametrize(
    "state", [FlowState.APPROVED, FlowState.REJECTED, FlowState.TIMED_OUT, FlowState.FAILED, FlowState.ACTIVE]
)
def test_an_answer_after_the_flow_left_verifying_changes_nothing(state: FlowState) -> None:
    resp = _verify(result="OK", user_type="POSTPAID", auto_pay_allowed=True)

    assert flow2.receive_verify_response(signing_flow(state), resp, NOW, TIMING) == NOTHING


def test_an_answer_after_the_last_ask_timed_out_changes_nothing_even_before_the_timer_fires() -> None:
    last_ask_expired = signing_flow(asks=TIMING.crm_asks, deadline=NOW - timedelta(seconds=1))
    resp = _verify(result="OK", user_type="POSTPAID", auto_pay_allowed=True)

    step = flow2.receive_verify_response(last_ask_expired, resp, NOW, TIMING)

    assert step == NOTHING
    timed_out = flow2.crm_timer_expired(last_ask_expired, NOW, TIMING)
    assert _answer(timed_out).reason_code is ReasonCode.CRM_TIMEOUT


# --- crm_timer_expired ---------------------------------------------------------------------


def test_a_timer_that_is_not_due_yet_does_nothing() -> None:
    flow = signing_flow(deadline=NOW + timedelta(milliseconds=1))

    assert flow2.crm_timer_expired(flow, NOW, TIMING) == NOTHING


def test_a_timer_on_a_flow_that_left_verifying_does_nothing() -> None:
    flow = signing_flow(FlowState.APPROVED, deadline=NOW - timedelta(seconds=1))

    assert flow2.crm_timer_expired(flow, NOW, TIMING) == NOTHING


def test_a_silent_crm_with_asks_left_is_asked_again_with_the_same_verify_id() -> None:
    flow = signing_flow(asks=2, deadline=NOW)

    step = flow2.crm_timer_expired(flow, NOW, TIMING)

    assert step.flow is not None and step.flow.state is FlowState.VERIFYING
    assert step.flow.asks == 3 and step.flow.verify_id == "V1"
    assert step.flow.deadline == NOW + TIMING.crm_timeout
    ask = _only(step)
    assert (ask.to, ask.type) == (CRM_GD, "verify.request")
    assert isinstance(ask.body, VerifyRequest) and ask.body.verify_id == "V1"
    assert ask.message_id is None, "each ask must get its own new message_id"


def test_a_crm_silent_through_its_last_ask_gets_the_bank_crm_timeout() -> None:
    flow = signing_flow(asks=3, deadline=NOW - timedelta(seconds=1))

    step = flow2.crm_timer_expired(flow, NOW, TIMING)

    assert step.flow is not None and step.flow.state is FlowState.TIMED_OUT
    assert step.flow.reason_code == "CRM_TIMEOUT" and step.flow.deadline is None
    answer = _answer(step)
    assert answer.result is Decision.REJECTED and answer.reason_code is ReasonCode.CRM_TIMEOUT
    assert step.out[0].correlation_id == "m-request"


# --- receive_confirmation ------------------------------------------------------------------


def _conf(**over: Any) -> SignConfirmed:
    body = confirmed(sign_request(PHONE, request_id="R1"), bank_agreement_no="BA-1")
    return parse(SignConfirmed, {**body, **over})


def _confirm(
    flow: SigningFlow | None, conf: SignConfirmed | None = None, *, account_fingerprint: str = "fp-card-1"
) -> Step | Agreement:
    return flow2.receive_confirmation(
        flow, conf or _conf(), bank="ICBC", message_id="m-confirm", account_fingerprint=account_fingerprint,
        now=NOW, new_id=ids(), timing=TIMING,
    )  # fmt: skip


def _refusal(decision: Step | Agreement) -> ReasonCode | None:
    assert isinstance(decision, Step), f"expected a refusal, got {decision}"
    assert decision.flow is None, "a refused confirmation must not change the flow"
    out = _only(decision)
    assert out.correlation_id == "m-confirm"
    result = _result(out)
    assert result.status is AgreementState.REJECTED
    assert (result.request_id, result.bank_agreement_no) == ("R1", "BA-1")
    return result.reason_code


def test_a_confirmation_of_no_known_request_is_refused_unknown_request() -> None:
    assert _refusal(_confirm(None)) is ReasonCode.UNKNOWN_REQUEST


def test_a_confirmation_exactly_at_the_end_of_the_approval_window_is_still_taken() -> None:
    flow = signing_flow(FlowState.APPROVED, approved_at=NOW - TIMING.approval_window)

    assert isinstance(_confirm(flow), Agreement)


def test_a_confirmation_of_an_approval_older_than_the_window_is_refused_unknown_request() -> None:
    flow = signing_flow(FlowState.APPROVED, approved_at=NOW - TIMING.approval_window - timedelta(seconds=1))

    assert _refusal(_confirm(flow)) is ReasonCode.UNKNOWN_REQUEST


@pytest.mark.parametrize(
    "state", [FlowState.FAILED, FlowState.VERIFYING, FlowState.REJECTED, FlowState.TIMED_OUT]
)
def test_a_confirmation_of_a_closed_or_unapproved_flow_is_refused_unknown_request(state: FlowState) -> None:
    assert _refusal(_confirm(signing_flow(state))) is ReasonCode.UNKNOWN_REQUEST


@pytest.mark.parametrize(
    ("what", "conf_over", "flow_over", "account_fp"),
    [
        ("another phone", {"phone": "13800138001"}, {}, "fp-card-1"),
        ("another account", {}, {}, "fp-card-2"),
        ("another account type", {"account_type": "CREDIT"}, {}, "fp-card-1"),
        ("another threshold", {"recharge_threshold": 999}, {}, "fp-card-1"),
        ("another amount", {"recharge_amount": 4999}, {}, "fp-card-1"),
        ("a threshold on a postpaid number", {"recharge_threshold": 1000}, {"terms": POSTPAID}, "fp-card-1"),
        ("auto_pay where not allowed", {"auto_pay": True}, {}, "fp-card-1"),
    ],
)
def test_a_confirmation_with_other_content_than_its_request_is_refused_request_mismatch(
    what: str, conf_over: dict[str, Any], flow_over: dict[str, Any], account_fp: str
) -> None:
    flow = signing_flow(FlowState.APPROVED, **flow_over)

    assert _refusal(_confirm(flow, _conf(**conf_over), account_fingerprint=account_fp)) is (
        ReasonCode.REQUEST_MISMATCH
    ), what


def test_a_valid_confirmation_becomes_an_active_agreement_with_the_crm_terms() -> None:
    flow = signing_flow(FlowState.APPROVED)

    made = _confirm(flow)

    assert made == Agreement(
        agreement_id="A1", version=1, status=AgreementStatus.ACTIVE, phone=PHONE, province="GD", bank="ICBC",
        bank_agreement_no="BA-1", account=flow.account, user_type=UserType.PREPAID, recharge_threshold=1000,
        recharge_amount=5000, auto_pay=False, channel=Channel.ONLINE, signed_at=_conf().signed_at,
        updated_at=NOW, flow_key="ICBC|R1",
    )  # fmt: skip


def test_a_postpaid_confirmation_with_auto_pay_allowed_keeps_auto_pay_and_no_amounts() -> None:
    flow = signing_flow(FlowState.APPROVED, terms=POSTPAID)

    made = _confirm(flow, _conf(auto_pay=True))

    assert isinstance(made, Agreement)
    assert made.user_type is UserType.POSTPAID and made.auto_pay is True
    assert made.recharge_threshold is None and made.recharge_amount is None


def _confirmed_flow(state: FlowState = FlowState.ACTIVE) -> SigningFlow:
    conf_fp = flow2.confirmation_fingerprint(_conf(), "fp-card-1")
    approved = signing_flow(FlowState.APPROVED)
    return replace(approved, state=state, agreement_id="A1", confirm_message_id="m-confirm-1",
                   confirm_fingerprint=conf_fp)  # fmt: skip


@pytest.mark.parametrize("state", [FlowState.ACTIVE, FlowState.MANUAL_REVIEW])
def test_a_repeated_confirmation_with_the_same_content_asks_for_a_copy_of_the_latest_result(
    state: FlowState,
) -> None:
    step = _confirm(_confirmed_flow(state))

    assert step == Step(copy_latest=("bank.ICBC.sign.result", "m-confirm-1"))


def test_a_repeated_confirmation_with_other_content_is_refused_request_mismatch() -> None:
    step = _confirm(_confirmed_flow(), _conf(recharge_amount=4000))

    assert _refusal(step) is ReasonCode.REQUEST_MISMATCH


def test_a_changed_bank_agreement_no_makes_a_repeated_confirmation_a_mismatch() -> None:
    step = _confirm(_confirmed_flow(), _conf(bank_agreement_no="BA-2"))

    assert isinstance(step, Step) and step.copy_latest is None
    assert _result(_only(step)).reason_code is ReasonCode.REQUEST_MISMATCH


# --- record_agreement, hold_for_review, receive_sign_failed --------------------------------


def _agreement() -> Agreement:
    made = _confirm(signing_flow(FlowState.APPROVED))
    assert isinstance(made, Agreement)
    return made


def test_recording_an_agreement_answers_the_bank_active_and_notifies_the_home_crm_without_the_card() -> None:
    flow, made = signing_flow(FlowState.APPROVED), _agreement()

    step = flow2.record_agreement(flow, made, "m-confirm", "fp-confirm")

    assert step.flow is not None and step.flow.state is FlowState.ACTIVE
    assert (step.flow.agreement_id, step.flow.confirm_message_id, step.flow.confirm_fingerprint) == (
        "A1", "m-confirm", "fp-confirm",
    )  # fmt: skip
    result_out, notify_out = step.out
    assert result_out.correlation_id == "m-confirm"
    assert _result(result_out) == SignResult(
        request_id="R1", bank_agreement_no="BA-1", status=AgreementState.ACTIVE, agreement_id="A1",
        agreement_version=1,
    )  # fmt: skip
    assert (notify_out.to, notify_out.type) == (CRM_GD, "sign.notify")
    assert isinstance(notify_out.body, SignNotify)
    sent = notify_out.body.model_dump(mode="json")
    assert "account_no" not in sent and "id_no" not in sent
    assert sent["account_last4"] == "3445" and sent["bank_code"] == "ICBC" and sent["phone"] == PHONE
    assert (sent["agreement_id"], sent["agreement_version"], sent["user_type"]) == ("A1", 1, "PREPAID")
    assert (sent["recharge_threshold"], sent["recharge_amount"], sent["auto_pay"]) == (1000, 5000, False)


def test_a_second_agreement_for_a_number_is_held_for_review_and_the_crm_is_not_notified() -> None:
    flow, made = signing_flow(FlowState.APPROVED), _agreement()

    step = flow2.hold_for_review(flow, made, "m-confirm", "fp-confirm")

    assert step.flow is not None and step.flow.state is FlowState.MANUAL_REVIEW
    assert step.flow.agreement_id == "A1" and step.flow.confirm_message_id == "m-confirm"
    out = _only(step)
    assert out.correlation_id == "m-confirm"
    result = _result(out)
    assert result.status is AgreementState.MANUAL_REVIEW
    assert result.reason_code is ReasonCode.DUPLICATE_AGREEMENT and result.agreement_id is None


@pytest.mark.parametrize("state", [FlowState.VERIFYING, FlowState.APPROVED])
def test_a_failed_signing_closes_an_open_flow_without_an_answer(state: FlowState) -> None:
    step = flow2.receive_sign_failed(signing_flow(state))

    assert step.flow is not None and step.flow.state is FlowState.FAILED and step.flow.deadline is None
    assert step.out == [] and step.copy_latest is None


@pytest.mark.parametrize(
    "state", [FlowState.ACTIVE, FlowState.REJECTED, FlowState.TIMED_OUT, FlowState.FAILED]
)
def test_a_failed_signing_of_a_closed_flow_changes_nothing(state: FlowState) -> None:
    assert flow2.receive_sign_failed(signing_flow(state)) == NOTHING


def test_a_verify_answer_after_a_failed_signing_changes_nothing() -> None:
    failed = flow2.receive_sign_failed(signing_flow()).flow
    assert failed is not None
    resp = _verify(result="OK", user_type="POSTPAID", auto_pay_allowed=True)

    assert flow2.receive_verify_response(failed, resp, NOW, TIMING) == NOTHING
