"""Flow 2 of DOMAIN.md, signing started in a bank's channel, as pure decisions.

Each function takes the state the shell loaded, the message and the time, and returns a `Step`:
the new flow state and the messages to send. Read top to bottom it is the flow:
a request arrives → ask the home CRM to verify (again while it is silent) → answer the bank →
the bank confirms → record the agreement (or hold it for an operator) → notify the home CRM.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from contracts.bank import SignConfirmed, SignRequest, SignResponse, SignResult
from contracts.common import AgreementState, Channel, Decision, Outcome, ReasonCode, UserType
from contracts.crm import SignNotify, VerifyRequest, VerifyResponse
from contracts.routing import Party, PartyKind
from hub.agreements import Account, Agreement, AgreementStatus, FlowState, SigningFlow, Terms
from hub.flows.common import NewId, Step, Timing, fingerprint
from hub.outgoing import Outgoing


def _bank(flow: SigningFlow) -> Party:
    return Party(PartyKind.BANK, flow.bank)


def _crm(province: str) -> Party:
    return Party(PartyKind.CRM, province)


# --- steps 2-3: the request ---------------------------------------------------------------


def receive_sign_request(
    req: SignRequest,
    *,
    bank: str,
    message_id: str,
    province: str | None,
    already_active: bool,
    existing: SigningFlow | None,
    account: Account,
    id_encrypted: str,
    request_fingerprint: str,
    now: datetime,
    new_id: NewId,
    timing: Timing,
) -> Step:
    """A bank asks to sign a number: refuse at once, or ask the number's home CRM."""
    if existing is not None:
        return _repeated_request(existing, req, message_id, request_fingerprint)
    flow = SigningFlow(
        bank=bank, request_id=req.request_id, phone=req.phone, province=province or "",
        account=account, channel=req.channel, request_message_id=message_id,
        request_fingerprint=request_fingerprint, state=FlowState.VERIFYING, created_at=now,
        id_encrypted=id_encrypted,
    )  # fmt: skip
    if province is None:
        return refuse_request(flow, ReasonCode.UNKNOWN_SEGMENT, "the number's home province is not known")
    if already_active:
        return refuse_request(flow, ReasonCode.ALREADY_SIGNED, "the number already has an ACTIVE agreement")
    return ask_home_crm_to_verify(replace(flow, verify_id=new_id("V")), now, timing)


def _repeated_request(existing: SigningFlow, req: SignRequest, message_id: str, fp: str) -> Step:
    if fp == existing.request_fingerprint:
        return Step(copy_latest=(f"bank.{existing.bank}.sign.response", existing.request_message_id))
    answer = SignResponse(
        request_id=req.request_id, result=Decision.REJECTED, reason_code=ReasonCode.REQUEST_MISMATCH,
        reason="this request_id was used for a request with other content",
    )  # fmt: skip
    return Step(out=[Outgoing(_bank(existing), "sign.response", answer, message_id)])


def refuse_request(flow: SigningFlow, reason_code: ReasonCode, reason: str | None) -> Step:
    closed = replace(flow, state=FlowState.REJECTED, reason_code=reason_code.value, deadline=None)
    return Step(closed, [answer_bank(closed, Decision.REJECTED, reason_code, reason)])


def ask_home_crm_to_verify(flow: SigningFlow, now: datetime, timing: Timing) -> Step:
    """Step 3: ask (or ask again, same verify_id) and start the answer timer."""
    asked = replace(flow, asks=flow.asks + 1, deadline=now + timing.crm_timeout, state=FlowState.VERIFYING)
    assert asked.verify_id is not None
    ask = VerifyRequest(
        verify_id=asked.verify_id, phone=flow.phone, bank_code=flow.bank, channel=flow.channel,
        account_type=flow.account.account_type,
    )  # fmt: skip
    return Step(asked, [Outgoing(_crm(flow.province), "verify.request", ask)])


# --- steps 4-6: the CRM's answer, or its silence ----------------------------------------


def receive_verify_response(flow: SigningFlow, resp: VerifyResponse, now: datetime, timing: Timing) -> Step:
    """Step 5: the CRM answered. An answer after the last ask timed out changes nothing, even
    before the timer has fired; the timer then answers the bank CRM_TIMEOUT."""
    if flow.state is not FlowState.VERIFYING or _last_ask_expired(flow, now, timing):
        return Step()
    if resp.result is Outcome.REJECTED:
        assert resp.reason_code is not None
        return refuse_request(flow, resp.reason_code, f"refused by crm.{flow.province}")
    assert resp.user_type is not None and resp.auto_pay_allowed is not None
    prepaid = resp.user_type is UserType.PREPAID
    terms = Terms(
        user_type=resp.user_type,
        recharge_threshold=resp.recharge_threshold if prepaid else None,
        recharge_amount=resp.recharge_amount if prepaid else None,
        auto_pay_allowed=resp.auto_pay_allowed,
    )
    approved = replace(flow, state=FlowState.APPROVED, terms=terms, approved_at=now, deadline=None)
    return Step(approved, [answer_bank(approved, Decision.APPROVED, None, None)])


def _last_ask_expired(flow: SigningFlow, now: datetime, timing: Timing) -> bool:
    return flow.asks >= timing.crm_asks and flow.deadline is not None and flow.deadline <= now


def crm_timer_expired(flow: SigningFlow, now: datetime, timing: Timing) -> Step:
    """The CRM stayed silent for one ask: ask again, or give the bank CRM_TIMEOUT."""
    if flow.state is not FlowState.VERIFYING or flow.deadline is None or flow.deadline > now:
        return Step()
    if flow.asks < timing.crm_asks:
        return ask_home_crm_to_verify(flow, now, timing)
    reason = f"crm.{flow.province} did not answer {flow.asks} asks"
    timed_out = replace(
        flow, state=FlowState.TIMED_OUT, reason_code=ReasonCode.CRM_TIMEOUT.value, deadline=None
    )
    return Step(timed_out, [answer_bank(timed_out, Decision.REJECTED, ReasonCode.CRM_TIMEOUT, reason)])


def answer_bank(flow: SigningFlow, result: Decision, code: ReasonCode | None, reason: str | None) -> Outgoing:
    terms = flow.terms if result is Decision.APPROVED else None
    body = SignResponse(
        request_id=flow.request_id, result=result, reason_code=code, reason=reason,
        user_type=terms.user_type if terms else None,
        recharge_threshold=terms.recharge_threshold if terms else None,
        recharge_amount=terms.recharge_amount if terms else None,
        auto_pay_allowed=terms.auto_pay_allowed if terms else None,
    )  # fmt: skip
    return Outgoing(_bank(flow), "sign.response", body, flow.request_message_id)


def receive_sign_failed(flow: SigningFlow) -> Step:
    """The bank did not sign: close an open flow, without an answer."""
    if flow.state in {FlowState.VERIFYING, FlowState.APPROVED}:
        return Step(replace(flow, state=FlowState.FAILED, deadline=None))
    return Step()


# --- steps 8-10: the confirmation ---------------------------------------------------------


def confirmation_fingerprint(conf: SignConfirmed, account_fingerprint: str) -> str:
    # auto_pay absent means false: the same confirmation either way.
    return fingerprint(
        conf.phone, account_fingerprint, conf.account_type, conf.bank_agreement_no,
        conf.recharge_threshold, conf.recharge_amount, bool(conf.auto_pay),
    )  # fmt: skip


def receive_confirmation(
    flow: SigningFlow | None,
    conf: SignConfirmed,
    *,
    bank: str,
    message_id: str,
    account_fingerprint: str,
    now: datetime,
    new_id: NewId,
    timing: Timing,
) -> Step | Agreement:
    """Step 9: decide on a `sign.confirmed`. An `Agreement` means: try to activate it."""
    answer_to = Party(PartyKind.BANK, bank)
    if flow is not None and flow.state.confirmed:
        fp = confirmation_fingerprint(conf, account_fingerprint)
        if fp == flow.confirm_fingerprint:
            return Step(copy_latest=(f"{answer_to}.sign.result", flow.confirm_message_id or ""))
        return Step(out=[reject_confirmation(answer_to, conf, message_id, ReasonCode.REQUEST_MISMATCH)])
    if flow is None or not _open_for_confirmation(flow, now, timing):
        return Step(out=[reject_confirmation(answer_to, conf, message_id, ReasonCode.UNKNOWN_REQUEST)])
    if not _matches_request(flow, conf, account_fingerprint):
        return Step(out=[reject_confirmation(answer_to, conf, message_id, ReasonCode.REQUEST_MISMATCH)])
    return _agreement_from(flow, conf, new_id("A"), now)


def _open_for_confirmation(flow: SigningFlow, now: datetime, timing: Timing) -> bool:
    return (
        flow.state is FlowState.APPROVED
        and flow.approved_at is not None
        and now - flow.approved_at <= timing.approval_window
    )


def _matches_request(flow: SigningFlow, conf: SignConfirmed, account_fingerprint: str) -> bool:
    terms = flow.terms
    if terms is None or conf.phone != flow.phone or conf.account_type is not flow.account.account_type:
        return False
    if account_fingerprint != flow.account.fingerprint:
        return False
    return terms_match(terms, conf)


def terms_match(terms: Terms, conf: SignConfirmed) -> bool:
    """The confirmed terms are the CRM's (omitted ones taken from the CRM); shared with flow 1."""
    if conf.auto_pay and not terms.auto_pay_allowed:
        return False
    if terms.user_type is UserType.POSTPAID:
        return conf.recharge_threshold is None and conf.recharge_amount is None
    return conf.recharge_threshold in (None, terms.recharge_threshold) and conf.recharge_amount in (
        None,
        terms.recharge_amount,
    )


def _agreement_from(flow: SigningFlow, conf: SignConfirmed, agreement_id: str, now: datetime) -> Agreement:
    assert flow.terms is not None
    return new_agreement(conf, flow.terms, flow.account, agreement_id=agreement_id, province=flow.province,
                         bank=flow.bank, channel=flow.channel, flow_key=flow.key, now=now)  # fmt: skip


def new_agreement(
    conf: SignConfirmed, terms: Terms, account: Account, *, agreement_id: str, province: str, bank: str,
    channel: Channel, flow_key: str, now: datetime,
) -> Agreement:  # fmt: skip
    """The ACTIVE agreement a confirmation makes, on the CRM's terms (shared with flow 1)."""
    prepaid = terms.user_type is UserType.PREPAID
    return Agreement(
        agreement_id=agreement_id, version=1, status=AgreementStatus.ACTIVE, phone=conf.phone,
        province=province, bank=bank, bank_agreement_no=conf.bank_agreement_no,
        account=account, user_type=terms.user_type,
        recharge_threshold=(conf.recharge_threshold or terms.recharge_threshold) if prepaid else None,
        recharge_amount=(conf.recharge_amount or terms.recharge_amount) if prepaid else None,
        auto_pay=bool(conf.auto_pay), channel=channel, signed_at=conf.signed_at, updated_at=now,
        flow_key=flow_key, auto_pay_allowed=terms.auto_pay_allowed,
    )  # fmt: skip


def reject_confirmation(bank: Party, conf: SignConfirmed, message_id: str, code: ReasonCode) -> Outgoing:
    body = SignResult(
        request_id=conf.request_id, session_id=conf.session_id, bank_agreement_no=conf.bank_agreement_no,
        status=AgreementState.REJECTED, reason_code=code,
    )  # fmt: skip
    return Outgoing(bank, "sign.result", body, message_id)


def record_agreement(flow: SigningFlow, agreement: Agreement, message_id: str, confirm_fp: str) -> Step:
    """Step 9-10: the agreement is ACTIVE: answer the bank and notify the home CRM."""
    done = replace(
        flow, state=FlowState.ACTIVE, agreement_id=agreement.agreement_id,
        confirm_message_id=message_id, confirm_fingerprint=confirm_fp,
    )  # fmt: skip
    return Step(done, [signed_result(agreement, done, message_id), notify_home_crm(agreement)])


def signed_result(agreement: Agreement, flow: SigningFlow, correlation_id: str) -> Outgoing:
    return result_to_bank(agreement, AgreementState.ACTIVE, correlation_id, request_id=flow.request_id)


def result_to_bank(
    agreement: Agreement, status: AgreementState, correlation_id: str, *, request_id: str | None = None,
    session_id: str | None = None,
) -> Outgoing:  # fmt: skip
    """`sign.result` for a confirmation that named a request (flow 2) or a session (flow 1)."""
    active = status is AgreementState.ACTIVE
    body = SignResult(
        request_id=request_id, session_id=session_id, bank_agreement_no=agreement.bank_agreement_no,
        status=status, agreement_id=agreement.agreement_id if active else None,
        agreement_version=agreement.version if active else None,
        reason_code=None if active else ReasonCode.DUPLICATE_AGREEMENT,
    )  # fmt: skip
    return Outgoing(Party(PartyKind.BANK, agreement.bank), "sign.result", body, correlation_id)


def notify_home_crm(agreement: Agreement) -> Outgoing:
    body = SignNotify(
        agreement_id=agreement.agreement_id, agreement_version=agreement.version, phone=agreement.phone,
        bank_code=agreement.bank, account_last4=agreement.account.last4, user_type=agreement.user_type,
        recharge_threshold=agreement.recharge_threshold, recharge_amount=agreement.recharge_amount,
        auto_pay=agreement.auto_pay, channel=agreement.channel, signed_at=agreement.signed_at,
    )  # fmt: skip
    return Outgoing(_crm(agreement.province), "sign.notify", body)


def hold_for_review(flow: SigningFlow, agreement: Agreement, message_id: str, confirm_fp: str) -> Step:
    """Step 9, a second agreement for the number: MANUAL_REVIEW; an operator decides later."""
    held = replace(
        flow, state=FlowState.MANUAL_REVIEW, agreement_id=agreement.agreement_id,
        confirm_message_id=message_id, confirm_fingerprint=confirm_fp,
    )  # fmt: skip
    answer = result_to_bank(agreement, AgreementState.MANUAL_REVIEW, message_id, request_id=flow.request_id)
    return Step(held, [answer])
