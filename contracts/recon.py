"""Reconciliation announcements (CONTRACT.md, "Reconciliation files"); file records live in files."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from contracts.common import AsciiId, BusinessDate, Count, Message, Reason, ReconStatus, Scope, Sha256Hex

BANK_CLASSES = ("MISSING_AT_HUB", "MISSING_AT_BANK", "STATUS_MISMATCH", "TERMS_MISMATCH")
CRM_CLASSES = ("MISSING_AT_CRM", "UNKNOWN_AT_HUB", "STATUS_MISMATCH", "TERMS_MISMATCH")


class ReconFile(Message):
    """`recon.file`: a party uploaded a reconciliation file to the file area."""

    file_name: AsciiId
    business_date: BusinessDate
    scope: Scope
    record_count: Count
    sha256: Sha256Hex


class ReconResult(Message):
    """`recon.result`: the outcome of a party's file."""

    file_name: AsciiId
    status: ReconStatus
    counts: dict[str, Count] | None = None
    reason: Reason | None = None

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
