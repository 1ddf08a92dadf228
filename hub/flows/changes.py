"""What unsigning and modifying share: finding out whether a change may apply, and its outcome.

A change names the agreement (by the bank's number or the hub's id, or the number's ACTIVE
agreement), may carry the `agreement_version` it was based on, and either applies (a new
version), is already done, or is refused with a reason code. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.common import Message, Outcome, ReasonCode
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement
from hub.outgoing import Outgoing


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ReasonCode
    reason: str


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Nothing to do (already cancelled, or the same terms): answered OK with this version."""

    agreement: Agreement


@dataclass(frozen=True, slots=True)
class Applied:
    before: Agreement
    after: Agreement


Verdict = Refusal | Unchanged | Applied


def check_target(current: Agreement | None, phone: str, based_on: int | None) -> Refusal | None:
    """The refusals every change shares: unknown agreement, another number, a stale or odd base."""
    if current is None:
        return Refusal(ReasonCode.UNKNOWN_AGREEMENT, "no such agreement")
    if current.phone != phone:
        return Refusal(ReasonCode.REQUEST_MISMATCH, "the agreement belongs to another number")
    if based_on is not None and based_on < current.version:
        return Refusal(
            ReasonCode.STALE_CHANGE, f"based on version {based_on}; the agreement is at {current.version}"
        )
    if based_on is not None and based_on > current.version:
        return Refusal(
            ReasonCode.REQUEST_MISMATCH, f"version {based_on} does not exist yet ({current.version})"
        )
    return None


def latest(verdict: Applied | Unchanged) -> Agreement:
    """The agreement as a change that holds leaves it."""
    return verdict.after if isinstance(verdict, Applied) else verdict.agreement


def answer(verdict: Verdict, to: Party, model: type[Message], msg_type: str, correlation_id: str, **names: str
           ) -> Outgoing:  # fmt: skip
    """The requester's answer to a change (`unsign.result`, `modify.result`): REJECTED with the
    refusal's code and reason, else OK with the agreement's version (and, to a CRM, its id).
    `names`: how the requester named the agreement (a bank's `bank_agreement_no`, a CRM's `phone`)."""
    fields: dict[str, Any] = dict(names)
    if isinstance(verdict, Refusal):
        fields |= {"result": Outcome.REJECTED, "reason_code": verdict.code, "reason": verdict.reason}
    else:
        agreement = latest(verdict)
        fields |= {"result": Outcome.OK, "agreement_version": agreement.version}
        if to.kind is PartyKind.CRM:
            fields["agreement_id"] = agreement.agreement_id
    return Outgoing(to, msg_type, model(**fields), correlation_id)
