"""What unsigning and modifying share: finding out whether a change may apply, and its outcome.

A change names the agreement (by the bank's number or the hub's id, or the number's ACTIVE
agreement), may carry the `agreement_version` it was based on, and either applies (a new
version), is already done, or is refused with a reason code. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.common import ReasonCode
from hub.agreements import Agreement


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
