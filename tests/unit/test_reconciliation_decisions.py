"""The pure decisions of flow 3: classes, corrections, error-handling records, the cut-off hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hub.flows.reconciliation import (
    BankRecord,
    CrmRecord,
    HubRecord,
    Terms,
    Verdict,
    Window,
    classify_bank,
    classify_crm,
    correct_hub,
)

DAY = date(2026, 11, 25)
MONTHLY = Window.of(DAY, "MONTHLY")
DAILY = Window.of(DAY, "DAILY")
NOON = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
LATE = datetime(2026, 11, 25, 15, 55, tzinfo=UTC)  # 23:55 in Shanghai: within the hold window
EARLIER = datetime(2026, 10, 1, tzinfo=UTC)
TERMS = Terms("PREPAID", 1000, 5000, False)


def bank(status: str = "ACTIVE", terms: Terms = TERMS, changed: datetime = NOON, **kw: object) -> BankRecord:
    return BankRecord("BA1", "13800138000", "3445", status, terms, EARLIER, changed, **kw)  # type: ignore[arg-type]


def hub(status: str = "ACTIVE", terms: Terms = TERMS, changed: datetime = NOON, signed: datetime = EARLIER,
        **kw: object) -> HubRecord:  # fmt: skip
    return HubRecord("A1", "ICBC", "BA1", "13800138000", "GD", status, 3, terms, signed, changed, **kw)  # type: ignore[arg-type]


def crm(status: str = "ACTIVE", terms: Terms = TERMS, changed: datetime = NOON) -> CrmRecord:
    return CrmRecord("A1", "13800138000", "ICBC", status, terms, changed)


def test_the_same_agreement_on_both_sides_matches() -> None:
    assert classify_bank(bank(), hub(), MONTHLY) is Verdict.MATCH


def test_each_bank_class_is_found() -> None:
    assert classify_bank(bank(), None, MONTHLY) == "MISSING_AT_HUB"
    assert classify_bank(None, hub(), MONTHLY) == "MISSING_AT_BANK"
    assert classify_bank(bank("CANCELLED"), hub(), MONTHLY) == "STATUS_MISMATCH"
    assert classify_bank(bank(terms=replace(TERMS, recharge_amount=8000)), hub(), MONTHLY) == "TERMS_MISMATCH"


def test_status_wins_over_terms_when_both_differ() -> None:
    assert (
        classify_bank(bank("CANCELLED", replace(TERMS, auto_pay=True)), hub(), MONTHLY) == "STATUS_MISMATCH"
    )


def test_an_agreement_held_in_a_manual_case_is_left_to_the_operator() -> None:
    assert classify_bank(bank(), hub("PENDING_REVIEW"), MONTHLY) is Verdict.IGNORED


def test_a_cancelled_agreement_the_bank_never_had_is_no_discrepancy_in_a_monthly_file() -> None:
    assert classify_bank(None, hub("CANCELLED"), MONTHLY) is Verdict.MATCH


def test_the_bank_wins_every_correction() -> None:
    new = correct_hub("MISSING_AT_HUB", bank(), None, MONTHLY)
    assert new is not None and new.agreement_id is None and new.status == "ACTIVE"
    gone = correct_hub("MISSING_AT_BANK", None, hub(), MONTHLY)
    assert gone is not None and (gone.agreement_id, gone.expected_version, gone.status) == (
        "A1",
        3,
        "CANCELLED",
    )
    changed = correct_hub("TERMS_MISMATCH", bank(terms=replace(TERMS, recharge_amount=1)), hub(), MONTHLY)
    assert changed is not None and changed.terms.recharge_amount == 1 and changed.expected_version == 3


def test_a_daily_file_without_an_older_agreement_corrects_nothing() -> None:
    assert classify_bank(None, hub(changed=NOON), DAILY) == "MISSING_AT_BANK"
    assert correct_hub("MISSING_AT_BANK", None, hub(changed=NOON), DAILY) is None
    assert correct_hub("MISSING_AT_BANK", None, hub(changed=NOON, signed=NOON), DAILY) is not None


def test_a_daily_file_ignores_hub_agreements_that_did_not_change_that_day() -> None:
    assert classify_bank(None, hub(changed=EARLIER), DAILY) is Verdict.MATCH


def test_a_one_sided_change_near_midnight_is_held_then_called_missing_the_next_day() -> None:
    assert classify_bank(bank(changed=LATE), None, DAILY) is Verdict.HELD
    assert classify_bank(None, hub(changed=LATE), DAILY) is Verdict.HELD
    assert classify_bank(bank(changed=LATE, second_look=True), None, DAILY) == "MISSING_AT_HUB"
    assert classify_bank(None, hub(changed=LATE, second_look=True), DAILY) == "MISSING_AT_BANK"
    assert classify_bank(bank(changed=LATE - timedelta(minutes=10)), None, DAILY) == "MISSING_AT_HUB"


def test_a_monthly_file_holds_nothing() -> None:
    assert classify_bank(bank(changed=LATE), None, MONTHLY) == "MISSING_AT_HUB"


def test_each_province_error_record_carries_the_hubs_data() -> None:
    add = classify_crm(None, hub(), MONTHLY)
    assert not isinstance(add, Verdict) and (add.action, add.reason_code, add.bank_code) == ("ADD", "MISSING_AT_CRM",
                                                                                              "ICBC")  # fmt: skip
    update = classify_crm(crm("CANCELLED"), hub(), MONTHLY)
    assert not isinstance(update, Verdict) and (update.action, update.status) == ("UPDATE", "ACTIVE")
    assert update.reason_code == "STATUS_MISMATCH"
    terms = classify_crm(crm(terms=replace(TERMS, auto_pay=True)), hub(), MONTHLY)
    assert not isinstance(terms, Verdict) and terms.reason_code == "TERMS_MISMATCH" and terms.terms == TERMS
    delete = classify_crm(crm(), None, MONTHLY)
    assert not isinstance(delete, Verdict) and (delete.action, delete.reason_code) == (
        "DELETE",
        "UNKNOWN_AT_HUB",
    )


def test_a_province_matches_the_hub_when_nothing_active_differs() -> None:
    assert classify_crm(crm(), hub(), MONTHLY) is Verdict.MATCH
    assert classify_crm(crm("CANCELLED"), None, MONTHLY) is Verdict.MATCH
    assert classify_crm(None, hub("CANCELLED"), MONTHLY) is Verdict.MATCH
    assert classify_crm(crm(changed=LATE), None, DAILY) is Verdict.HELD


def test_the_business_day_is_shanghais() -> None:
    assert DAILY.start == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert DAILY.hold_from == datetime(2026, 11, 25, 15, 50, tzinfo=UTC)
