"""An operator resolves a duplicate-signing case (CONTRACT.md "Duplicates and the manual queue"),
as pure decisions.

KEEP_EXISTING: the held agreement is refused; its bank gets `sign.result` REJECTED,
DUPLICATE_AGREEMENT, and cancels its own. REPLACE: the existing agreement is cancelled (its bank
gets `unsign.notice`, the CRM `unsign.notify`, reason RESOLVED_BY_OPERATOR) and the held one
activated (`sign.result` ACTIVE to its bank, `sign.notify` to the CRM). Either way the bank of
the held confirmation gets exactly one more `sign.result`, correlated to that confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from contracts.bank import SignResult
from contracts.common import AgreementState, ReasonCode
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement, AgreementStatus, Case
from hub.flows import unsigning
from hub.flows.bank_signing import notify_home_crm
from hub.flows.changes import Applied
from hub.outgoing import Outgoing


class Resolution(StrEnum):
    KEEP_EXISTING = "KEEP_EXISTING"
    REPLACE = "REPLACE"


@dataclass(frozen=True, slots=True)
class Resolved:
    changes: list[Applied]  # in the order they must be stored (a cancel before an activation)
    out: list[Outgoing]


def resolve(
    case: Case, held: Agreement, existing: Agreement | None, resolution: Resolution, now: datetime
) -> Resolved:
    if resolution is Resolution.KEEP_EXISTING:
        refused = replace(held, status=AgreementStatus.REJECTED, version=held.version + 1, updated_at=now)
        return Resolved(
            [Applied(held, refused)], [held_result(case, refused, ReasonCode.DUPLICATE_AGREEMENT)]
        )
    changes, out = [], []
    if existing is not None and existing.status is AgreementStatus.ACTIVE:
        cancelled = replace(
            existing, status=AgreementStatus.CANCELLED, version=existing.version + 1, updated_at=now
        )
        changes.append(Applied(existing, cancelled))
        out += [unsigning.tell_bank(cancelled, ReasonCode.RESOLVED_BY_OPERATOR),
                unsigning.tell_crm(cancelled, ReasonCode.RESOLVED_BY_OPERATOR)]  # fmt: skip
    active = replace(held, status=AgreementStatus.ACTIVE, updated_at=now)
    changes.append(Applied(held, active))
    out += [held_result(case, active, None), notify_home_crm(active)]
    return Resolved(changes, out)


def held_result(case: Case, agreement: Agreement, code: ReasonCode | None) -> Outgoing:
    """The one more `sign.result` for the held confirmation, naming its request or session."""
    session_id = case.flow_key.removeprefix("session:") if case.flow_key.startswith("session:") else None
    request_id = None if session_id else case.flow_key.partition("|")[2]
    active = code is None
    body = SignResult(
        request_id=request_id, session_id=session_id, bank_agreement_no=agreement.bank_agreement_no,
        status=AgreementState.ACTIVE if active else AgreementState.REJECTED,
        agreement_id=agreement.agreement_id if active else None,
        agreement_version=agreement.version if active else None, reason_code=code,
    )  # fmt: skip
    return Outgoing(Party(PartyKind.BANK, agreement.bank), "sign.result", body, case.message_id)
