"""Flow 1 of DOMAIN.md, signing started in the operator's channel, as pure decisions.

Read top to bottom it is the flow: the web hall opens a session for a number its CRM cleared →
the browser passes the hub (entry token, once) → the bank page redeems its token (once) → the
bank confirms or fails naming the session → the hub records the agreement exactly as in flow 2
(or holds it for an operator) and notifies the home CRM. A session not completed in its window
expires. Recording reuses flow 2's agreement, `sign.result` and `sign.notify` builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from contracts.bank import SignConfirmed
from contracts.common import AgreementState, Channel, ReasonCode, UserType
from contracts.routing import Party, PartyKind
from contracts.web import SessionRequest
from hub.agreements import Account, Agreement, Terms
from hub.flows import bank_signing as flow2
from hub.outgoing import Outgoing
from hub.sessions import SessionState, SigningSession
from hub.web_tokens import Claims


@dataclass(frozen=True, slots=True)
class Refusal:
    """The signing entry refuses: `code` for programs, `detail` for people."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class SessionStep:
    """Like flow 2's Step: the session to save (None: unchanged), what to send, an answer to copy."""

    session: SigningSession | None = None
    out: list[Outgoing] = field(default_factory=list)
    copy_latest: tuple[str, str] | None = None


# --- step 4: the web hall opens a session --------------------------------------------------


def open_session(
    req: SessionRequest, *, hall: str, session_id: str, nonce: str, now: datetime, window: timedelta,
    bank_known: bool, home: str | None, already_active: bool,
) -> SigningSession | Refusal:  # fmt: skip
    """A session for a number the CRM cleared, or why not (checked again by the hub, not trusted)."""
    if not bank_known:
        return Refusal("UNKNOWN_BANK", f"bank {req.bank} has no signing page configured at this hub")
    if home is None:
        return Refusal("UNKNOWN_SEGMENT", "the number's home province is not served by this hub")
    if home != req.province:
        return Refusal("PROVINCE_MISMATCH", f"the number belongs to {home}, not {req.province}")
    if already_active:
        return Refusal("ALREADY_SIGNED", "the number already has an ACTIVE agreement")
    prepaid = req.user_type is UserType.PREPAID
    terms = Terms(req.user_type, req.recharge_threshold if prepaid else None,
                  req.recharge_amount if prepaid else None, req.auto_pay_allowed)  # fmt: skip
    return SigningSession(
        session_id=session_id, hall=hall, phone=req.phone, province=req.province, bank=req.bank,
        terms=terms, return_url=req.return_url, notify_url=req.notify_url, state=SessionState.CREATED,
        created_at=now, expires_at=now + window, hall_ref=req.hall_ref, nonce=nonce,
    )  # fmt: skip


def current(session: SigningSession, now: datetime) -> SigningSession:
    """The session as it stands at `now`: an open one past its window has expired."""
    if session.state.open and now >= session.expires_at:
        return replace(session, state=SessionState.EXPIRED, nonce=None, reason_code="SESSION_EXPIRED",
                       reason="the session was not completed within its window")  # fmt: skip
    return session


# --- the browser passes the hub, then the bank page redeems -------------------------------


def _token_refusal(session: SigningSession | None, claims: Claims, expected: SessionState) -> Refusal | None:
    if session is None:
        return Refusal("UNKNOWN_SESSION", "the link names no signing session of this hub")
    if session.state is SessionState.EXPIRED:
        return Refusal("EXPIRED", "the signing session has expired; start again at the web hall")
    if session.state is not expected or session.nonce != claims.nonce:
        return Refusal("USED", "the link was already used; start again at the web hall")
    return None


def enter(session: SigningSession | None, claims: Claims, *, new_nonce: str) -> SigningSession | Refusal:
    """The browser arrives with the entry token: once; the bank gets a token of its own."""
    refusal = _token_refusal(session, claims, SessionState.CREATED)
    if refusal is not None:
        return refusal
    assert session is not None
    return replace(session, state=SessionState.ENTERED, nonce=new_nonce)


def redeem(session: SigningSession | None, claims: Claims, *, bank: str) -> SigningSession | Refusal:
    """The bank page redeems its token: once, and only the session's bank."""
    refusal = _token_refusal(session, claims, SessionState.ENTERED)
    if refusal is not None:
        return refusal
    assert session is not None
    if session.bank != bank:
        return Refusal("WRONG_BANK", f"the session was opened for {session.bank}, not {bank}")
    return replace(session, state=SessionState.AT_BANK, nonce=None)


# --- step 5-6: the bank's confirmation or failure ------------------------------------------


def receive_confirmation(
    session: SigningSession | None, conf: SignConfirmed, *, bank: str, message_id: str, account: Account,
    now: datetime, agreement_id: str,
) -> SessionStep | Agreement:  # fmt: skip
    """Decide on a `sign.confirmed` naming a session. An `Agreement` means: try to activate it."""
    answer_to = Party(PartyKind.BANK, bank)
    if session is not None and session.bank == bank and session.state.confirmed:
        fp = flow2.confirmation_fingerprint(conf, account.fingerprint)
        if fp == session.confirm_fingerprint:
            return SessionStep(copy_latest=(f"{answer_to}.sign.result", session.confirm_message_id or ""))
        return _reject(answer_to, conf, message_id, ReasonCode.REQUEST_MISMATCH)
    if session is None or session.bank != bank or current(session, now).state is not SessionState.AT_BANK:
        return _reject(answer_to, conf, message_id, ReasonCode.UNKNOWN_REQUEST)
    if conf.phone != session.phone or not flow2.terms_match(session.terms, conf):
        return _reject(answer_to, conf, message_id, ReasonCode.REQUEST_MISMATCH)
    return flow2.new_agreement(conf, session.terms, account, agreement_id=agreement_id,
                               province=session.province, bank=bank, channel=Channel.OPERATOR_WEB,
                               flow_key=session.key, now=now)  # fmt: skip


def _reject(bank: Party, conf: SignConfirmed, message_id: str, code: ReasonCode) -> SessionStep:
    return SessionStep(out=[flow2.reject_confirmation(bank, conf, message_id, code)])


def _confirmed(session: SigningSession, state: SessionState, agreement: Agreement, message_id: str,
               confirm_fp: str) -> SigningSession:  # fmt: skip
    return replace(session, state=state, nonce=None, agreement_id=agreement.agreement_id,
                   bank_agreement_no=agreement.bank_agreement_no, confirm_message_id=message_id,
                   confirm_fingerprint=confirm_fp)  # fmt: skip


def record_agreement(
    session: SigningSession, agreement: Agreement, message_id: str, confirm_fp: str
) -> SessionStep:
    """Step 6: the agreement is ACTIVE: answer the bank and notify the home CRM (as flow 2)."""
    done = _confirmed(session, SessionState.ACTIVE, agreement, message_id, confirm_fp)
    answer = flow2.result_to_bank(agreement, AgreementState.ACTIVE, message_id, session_id=session.session_id)
    return SessionStep(done, [answer, flow2.notify_home_crm(agreement)])


def hold_for_review(
    session: SigningSession, held: Agreement, message_id: str, confirm_fp: str
) -> SessionStep:
    """Step 6, the number already has an agreement: MANUAL_REVIEW; an operator decides later."""
    done = replace(_confirmed(session, SessionState.MANUAL_REVIEW, held, message_id, confirm_fp),
                   reason_code=ReasonCode.DUPLICATE_AGREEMENT.value,
                   reason="the number already has an agreement; an operator will decide")  # fmt: skip
    answer = flow2.result_to_bank(
        held, AgreementState.MANUAL_REVIEW, message_id, session_id=session.session_id
    )
    return SessionStep(done, [answer])


def receive_sign_failed(
    session: SigningSession | None, *, bank: str, reason: str, now: datetime
) -> SessionStep:
    """The bank did not sign: close an open session of that bank, without an answer."""
    if session is None or session.bank != bank or not current(session, now).state.open:
        return SessionStep()
    return SessionStep(replace(session, state=SessionState.FAILED, nonce=None, reason_code="BANK_REFUSED",
                               reason=reason))  # fmt: skip


# --- step 5, for a bank that tells the web hall through the hub -----------------------------


def take_notice(session: SigningSession | None, *, bank: str, result: str) -> SigningSession | Refusal:
    """The bank's notice about its session, taken once (then passed on to the web hall)."""
    if session is None or session.bank != bank or session.state in {SessionState.CREATED, SessionState.ENTERED}:
        return Refusal("UNKNOWN_SESSION", f"bank {bank} has no session at its page with this id")
    if session.state is SessionState.EXPIRED:
        return Refusal("EXPIRED", "the signing session has expired")
    if session.notice is not None:
        return Refusal("NOTICE_TAKEN", "the session's notice was taken already; it is passed on once")
    return replace(session, notice=result)


def expire(session: SigningSession, now: datetime) -> SessionStep:
    """The sweeper's step: an open session past its window is closed as EXPIRED."""
    expired = current(session, now)
    return SessionStep(expired if expired.state is not session.state else None)
