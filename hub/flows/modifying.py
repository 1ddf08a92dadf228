"""Modifying the terms of an agreement (threshold, amount, auto-pay), from either side, as pure
decisions: validated, applied as a new version, answered with `modify.result`, and told to the
other side (`modify.notify` to the CRM, `modify.notice` to the bank)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from contracts.bank import BankModifyResult, ModifyNotice
from contracts.common import ReasonCode, UserType
from contracts.crm import CrmModifyResult, ModifyNotify
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement, AgreementStatus
from hub.flows.changes import Applied, Refusal, Unchanged, Verdict, answer, check_target
from hub.outgoing import Outgoing

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Configurable limits of the terms, in fen."""

    threshold_max: int
    amount_min: int
    amount_max: int


@dataclass(frozen=True, slots=True)
class NewTerms:
    """What a modify.request asks for; None keeps the current value."""

    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay: bool | None


def decide_modify(
    current: Agreement | None,
    *,
    phone: str,
    based_on: int | None,
    terms: NewTerms,
    bounds: Bounds,
    now: datetime,
) -> Verdict:
    refusal = check_target(current, phone, based_on)
    if refusal is not None:
        return refusal
    assert current is not None
    if current.status is not AgreementStatus.ACTIVE:
        return Refusal(ReasonCode.UNKNOWN_AGREEMENT, f"the agreement is {current.status.value}, not ACTIVE")
    invalid = _invalid(current, terms, bounds)
    if invalid is not None:
        return Refusal(ReasonCode.OTHER, invalid)
    changed = replace(
        current,
        recharge_threshold=_pick(terms.recharge_threshold, current.recharge_threshold),
        recharge_amount=_pick(terms.recharge_amount, current.recharge_amount),
        auto_pay=_pick(terms.auto_pay, current.auto_pay),
    )
    if changed == current:
        return Unchanged(current)
    return Applied(current, replace(changed, version=current.version + 1, updated_at=now))


def _pick(new: _T | None, old: _T) -> _T:
    return old if new is None else new


def _invalid(current: Agreement, terms: NewTerms, bounds: Bounds) -> str | None:
    prepaid_terms = terms.recharge_threshold is not None or terms.recharge_amount is not None
    if prepaid_terms and current.user_type is not UserType.PREPAID:
        return "recharge threshold and amount apply to prepaid numbers only"
    if terms.recharge_threshold is not None and terms.recharge_threshold > bounds.threshold_max:
        return f"recharge_threshold above the limit of {bounds.threshold_max} fen"
    amount = terms.recharge_amount
    if amount is not None and not bounds.amount_min <= amount <= bounds.amount_max:
        return f"recharge_amount outside {bounds.amount_min}-{bounds.amount_max} fen"
    if terms.auto_pay and not current.auto_pay_allowed:
        return "the province does not allow auto-pay for this number"
    return None


def answer_bank(verdict: Verdict, bank: Party, bank_agreement_no: str, correlation_id: str) -> Outgoing:
    return answer(verdict, bank, BankModifyResult, "modify.result", correlation_id, bank_agreement_no=bank_agreement_no)


def answer_crm(verdict: Verdict, crm: Party, phone: str, correlation_id: str) -> Outgoing:
    return answer(verdict, crm, CrmModifyResult, "modify.result", correlation_id, phone=phone)


def tell_crm(changed: Agreement) -> Outgoing:
    body = ModifyNotify(
        agreement_id=changed.agreement_id, agreement_version=changed.version, phone=changed.phone,
        recharge_threshold=changed.recharge_threshold, recharge_amount=changed.recharge_amount,
        auto_pay=changed.auto_pay,
    )  # fmt: skip
    return Outgoing(Party(PartyKind.CRM, changed.province), "modify.notify", body)


def tell_bank(changed: Agreement) -> Outgoing:
    body = ModifyNotice(
        bank_agreement_no=changed.bank_agreement_no, agreement_id=changed.agreement_id,
        agreement_version=changed.version, recharge_threshold=changed.recharge_threshold,
        recharge_amount=changed.recharge_amount, auto_pay=changed.auto_pay,
    )  # fmt: skip
    return Outgoing(Party(PartyKind.BANK, changed.bank), "modify.notice", body)

