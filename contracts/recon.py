"""Reconciliation announcements (CONTRACT.md, "Reconciliation files"); file records live in files.

Flow 3 reconciles agreements (scopes `DAILY`, `MONTHLY`); flow 4 (1.1) settles money with a bank's
`DEBITS` file and a BOSS's `CREDITS` file, whose `recon.result` also carries `totals`.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from contracts.common import (
    AsciiId,
    BusinessDate,
    Count,
    FenTotal,
    Message,
    Reason,
    ReconStatus,
    Scope,
    Sha256Hex,
)
from contracts.routing import PartyKind

BANK_CLASSES = ("MISSING_AT_HUB", "MISSING_AT_BANK", "STATUS_MISMATCH", "TERMS_MISMATCH")
CRM_CLASSES = ("MISSING_AT_CRM", "UNKNOWN_AT_HUB", "STATUS_MISMATCH", "TERMS_MISMATCH")
# Settlement classes of flow 4 (1.1): a bank's DEBITS file, a BOSS's CREDITS file.
DEBITS_CLASSES = ("DEBIT_MISSING_AT_HUB", "DEBIT_AMOUNT_MISMATCH", "DEBIT_MISSING_AT_BANK",
                  "DEBIT_STATUS_MISMATCH")  # fmt: skip
CREDITS_CLASSES = ("CREDIT_MISSING_AT_BOSS", "CREDIT_MISSING_AT_HUB", "CREDIT_AMOUNT_MISMATCH")
SETTLEMENT_SCOPES = frozenset({Scope.DEBITS, Scope.CREDITS})
# The scopes a recon.file may have, by its sender's kind (DEBITS and CREDITS since 1.1).
SCOPES: dict[PartyKind, tuple[Scope, ...]] = {
    PartyKind.BANK: (Scope.DAILY, Scope.MONTHLY, Scope.DEBITS),
    PartyKind.CRM: (Scope.DAILY, Scope.MONTHLY),
    PartyKind.BOSS: (Scope.CREDITS,),
}


class ReconFile(Message):
    """`recon.file`: a party uploaded a reconciliation file to the file area (from a bank, a CRM,
    or, scope `CREDITS`, a BOSS)."""

    file_name: AsciiId
    business_date: BusinessDate
    scope: Scope
    record_count: Count
    sha256: Sha256Hex


class Totals(Message):
    """`totals` of a `recon.result` for a `DEBITS` or `CREDITS` file (1.1): the file's own sums."""

    debited: FenTotal
    reversed: FenTotal
    credited: FenTotal
    count: Count


class ReconResult(Message):
    """`recon.result`: the outcome of a party's file."""

    file_name: AsciiId
    status: ReconStatus
    counts: dict[str, Count] | None = None
    reason: Reason | None = None
    totals: Totals | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        if self.status is ReconStatus.REJECTED and not self.reason:
            raise ValueError("reason is required when REJECTED")
        return self


class ReconErrors(Message):
    """`recon.errors`: the province's error-handling file is ready (flow 3, step 5)."""

    file_name: AsciiId
    business_date: BusinessDate
    record_count: Count
    sha256: Sha256Hex
