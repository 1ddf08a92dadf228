"""Unsigning (解约), from the bank or from the operator, as pure decisions.

The agreement becomes CANCELLED (never deleted) with a new version; the requester is answered
`unsign.result` and the other side told (`unsign.notify` to the CRM, `unsign.notice` to the bank).
A cancelled agreement asked again is answered OK; the number can sign again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from contracts.bank import BankUnsignResult, UnsignNotice
from contracts.common import ReasonCode
from contracts.crm import CrmUnsignResult, UnsignNotify
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement, AgreementStatus
from hub.flows.changes import Applied, Unchanged, Verdict, answer, check_target
from hub.outgoing import Outgoing


def decide_unsign(current: Agreement | None, *, phone: str, based_on: int | None, now: datetime) -> Verdict:
    settled = {AgreementStatus.CANCELLED, AgreementStatus.REJECTED}
    if current is not None and current.phone == phone and current.status in settled:
        return Unchanged(current)  # already cancelled (or never activated): the wish already holds
    refusal = check_target(current, phone, based_on)
    if refusal is not None:
        return refusal
    assert current is not None
    cancelled = replace(
        current, status=AgreementStatus.CANCELLED, version=current.version + 1, updated_at=now
    )
    return Applied(current, cancelled)


def answer_bank(verdict: Verdict, bank: Party, bank_agreement_no: str, correlation_id: str) -> Outgoing:
    return answer(verdict, bank, BankUnsignResult, "unsign.result", correlation_id, bank_agreement_no=bank_agreement_no)


def answer_crm(verdict: Verdict, crm: Party, phone: str, correlation_id: str) -> Outgoing:
    return answer(verdict, crm, CrmUnsignResult, "unsign.result", correlation_id, phone=phone)


def tell_crm(cancelled: Agreement, reason: ReasonCode) -> Outgoing:
    body = UnsignNotify(agreement_id=cancelled.agreement_id, agreement_version=cancelled.version,
                        phone=cancelled.phone, reason_code=reason)  # fmt: skip
    return Outgoing(Party(PartyKind.CRM, cancelled.province), "unsign.notify", body)


def tell_bank(cancelled: Agreement, reason: ReasonCode) -> Outgoing:
    body = UnsignNotice(bank_agreement_no=cancelled.bank_agreement_no, agreement_id=cancelled.agreement_id,
                        agreement_version=cancelled.version, reason_code=reason)  # fmt: skip
    return Outgoing(Party(PartyKind.BANK, cancelled.bank), "unsign.notice", body)

