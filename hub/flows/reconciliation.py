"""Reconciliation (签约核对, DOMAIN.md flow 3) as pure decisions.

1. The bank's file against the hub: the bank wins. Every difference gets one class
   (`MISSING_AT_HUB`, `MISSING_AT_BANK`, `STATUS_MISMATCH`, `TERMS_MISMATCH`) and, where the hub
   must change, a `Correction` (a new version, audited as RECONCILIATION).
2. The province's file against the balanced hub data: the hub wins. Every difference becomes an
   error-handling record (`ADD` / `UPDATE` / `DELETE`) carrying the hub's data.
3. A DAILY file covers one business day (Asia/Shanghai). A record changed in the last
   `HOLD_WINDOW` before midnight that shows on one side only is held, and looked at again with the
   next day's file before it is called missing: the other side may simply have recorded the
   change a moment after midnight.
No I/O here; `hub.services.reconciliation` loads, calls and saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from contracts.common import ReconStatus
from contracts.recon import BANK_CLASSES, CRM_CLASSES, ReconErrors, ReconResult

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOLD_WINDOW = timedelta(minutes=10)
LIVE = ("ACTIVE", "CANCELLED")  # hub statuses that are agreements a party can know of


@dataclass(frozen=True, slots=True)
class Window:
    """What a file covers: a DAILY file the changes of [start, end); a MONTHLY one everything at end."""

    scope: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, business_date: date, scope: str) -> Window:
        start = datetime.combine(business_date, time(0), SHANGHAI).astimezone(UTC)
        return cls(scope, start, start + timedelta(days=1))

    @property
    def daily(self) -> bool:
        return self.scope == "DAILY"

    @property
    def hold_from(self) -> datetime:
        return self.end - HOLD_WINDOW

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class Terms:
    user_type: str
    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay: bool


@dataclass(frozen=True, slots=True)
class BankRecord:
    bank_agreement_no: str
    phone: str
    account_last4: str
    status: str
    terms: Terms
    signed_at: datetime
    changed_at: datetime
    second_look: bool = False  # held from the previous day's file


@dataclass(frozen=True, slots=True)
class CrmRecord:
    agreement_id: str
    phone: str
    bank_code: str
    status: str
    terms: Terms
    changed_at: datetime
    second_look: bool = False


@dataclass(frozen=True, slots=True)
class HubRecord:
    """The hub's agreement as of the file's cut-off (`version` is the version at that moment)."""

    agreement_id: str
    bank: str
    bank_agreement_no: str
    phone: str
    province: str
    status: str
    version: int
    terms: Terms
    signed_at: datetime
    changed_at: datetime
    second_look: bool = False  # held from the previous day's file


class Verdict(StrEnum):
    MATCH = "MATCH"
    HELD = "HELD"  # near the cut-off on one side only: looked at again with the next day's file
    IGNORED = "IGNORED"  # the hub holds it in a manual case; an operator decides


@dataclass(frozen=True, slots=True)
class Correction:
    """How the hub changes after a bank's difference. `agreement_id` None: a new agreement.
    `expected_version`: the hub's version the comparison saw; a later change wins over this one."""

    discrepancy: str
    agreement_id: str | None
    expected_version: int | None
    status: str
    terms: Terms
    bank_record: BankRecord | None = None


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One line of a province's error-handling file."""

    action: str
    agreement_id: str
    phone: str
    bank_code: str
    status: str
    terms: Terms
    reason_code: str


# --- 1. the bank against the hub ------------------------------------------------------------


def classify_bank(bank: BankRecord | None, hub: HubRecord | None, window: Window) -> str | Verdict:
    """The discrepancy class of one (bank, hub) pair, or MATCH / HELD / IGNORED."""
    if hub is not None and hub.status not in LIVE:
        return Verdict.IGNORED
    if bank is None and hub is None:
        return Verdict.MATCH
    if hub is None:
        assert bank is not None
        return _held_or(bank.changed_at, bank.second_look, window, "MISSING_AT_HUB")
    if bank is None:
        if window.daily and not hub.second_look and not window.covers(hub.changed_at):
            return Verdict.MATCH  # not a change of this day: nothing to compare
        if not window.daily and hub.status != "ACTIVE":
            return Verdict.MATCH  # a cancelled agreement the bank never had: nothing to correct
        return _held_or(hub.changed_at, hub.second_look, window, "MISSING_AT_BANK")
    if bank.status != hub.status:
        return "STATUS_MISMATCH"
    if bank.terms != hub.terms:
        return "TERMS_MISMATCH"
    return Verdict.MATCH


def _held_or(changed_at: datetime, second_look: bool, window: Window, discrepancy: str) -> str | Verdict:
    if window.daily and not second_look and window.hold_from <= changed_at < window.end:
        return Verdict.HELD
    return discrepancy


def correct_hub(discrepancy: str, bank: BankRecord | None, hub: HubRecord | None,
                window: Window) -> Correction | None:  # fmt: skip
    """What the hub changes so that it agrees with the bank; None when it already holds."""
    if discrepancy == "MISSING_AT_HUB":
        assert bank is not None
        return Correction(discrepancy, None, None, bank.status, bank.terms, bank)
    assert hub is not None
    if discrepancy == "MISSING_AT_BANK":
        # A DAILY file that lacks an older agreement says only that the bank did not change it that
        # day; the MONTHLY file settles whether the bank has it at all.
        unknown_to_bank = not window.daily or window.covers(hub.signed_at) or hub.second_look
        if hub.status != "ACTIVE" or not unknown_to_bank:
            return None
        return Correction(discrepancy, hub.agreement_id, hub.version, "CANCELLED", hub.terms)
    assert bank is not None
    return Correction(discrepancy, hub.agreement_id, hub.version, bank.status, bank.terms, bank)


# --- 2. the province against the balanced hub data -------------------------------------------


def classify_crm(crm: CrmRecord | None, hub: HubRecord | None, window: Window) -> ErrorRecord | Verdict:
    """The error-handling record for one (CRM, hub) pair, or MATCH / HELD."""
    if hub is not None and hub.status not in LIVE:
        hub = None  # held by a manual case: not an agreement yet
    if hub is None:
        if crm is None or crm.status != "ACTIVE":
            return Verdict.MATCH  # nothing active to take away
        held = _held_or(crm.changed_at, crm.second_look, window, "UNKNOWN_AT_HUB")
        return held if isinstance(held, Verdict) else _record("DELETE", crm, "CANCELLED", crm.bank_code, held)
    if crm is None:
        if window.daily and not hub.second_look and not window.covers(hub.changed_at):
            return Verdict.MATCH
        if not window.daily and hub.status != "ACTIVE":
            return Verdict.MATCH  # a cancelled agreement the CRM never had: nothing to correct
        held = _held_or(hub.changed_at, hub.second_look, window, "MISSING_AT_CRM")
        return held if isinstance(held, Verdict) else _hub_record("ADD", hub, held)
    if crm.status != hub.status:
        return _hub_record("UPDATE", hub, "STATUS_MISMATCH")
    if crm.terms != hub.terms or crm.bank_code != hub.bank or crm.phone != hub.phone:
        return _hub_record("UPDATE", hub, "TERMS_MISMATCH")
    return Verdict.MATCH


def _hub_record(action: str, hub: HubRecord, reason: str) -> ErrorRecord:
    return ErrorRecord(action, hub.agreement_id, hub.phone, hub.bank, hub.status, hub.terms, reason)


def _record(action: str, crm: CrmRecord, status: str, bank_code: str, reason: str) -> ErrorRecord:
    return ErrorRecord(action, crm.agreement_id, crm.phone, bank_code, status, crm.terms, reason)


# --- answers ----------------------------------------------------------------------------------


def zero_counts(kind: str) -> dict[str, int]:
    return dict.fromkeys(BANK_CLASSES if kind == "bank" else CRM_CLASSES, 0)


def reconciled(file_name: str, counts: dict[str, int]) -> ReconResult:
    return ReconResult(file_name=file_name, status=ReconStatus.RECONCILED, counts=counts)


def rejected(file_name: str, reason: str, kind: str) -> ReconResult:
    return ReconResult(file_name=file_name, status=ReconStatus.REJECTED, counts=zero_counts(kind),
                       reason=reason[:500])  # fmt: skip


def errors_ready(file_name: str, business_date: date, record_count: int, sha256: str) -> ReconErrors:
    return ReconErrors(
        file_name=file_name, business_date=business_date.isoformat(), record_count=record_count, sha256=sha256
    )


def errors_file_name(crm_file_name: str) -> str:
    """The error-handling file answering a province's file (at most 64 characters)."""
    return ("ERR_" + crm_file_name)[:64]
