"""The pure decisions of unsigning and modifying: versions, refusals and what each side is told."""

from __future__ import annotations

from contracts.common import ReasonCode, UserType
from contracts.routing import Party, PartyKind
from hub.agreements import Agreement, AgreementStatus
from hub.flows import modifying, unsigning
from hub.flows.changes import Applied, Refusal, Unchanged, Verdict
from hub.flows.modifying import Bounds, NewTerms
from tests.support.records import NOW, agreement

BOUNDS = Bounds(threshold_max=100_000, amount_min=1_000, amount_max=100_000)
PHONE = "13800138000"


ACTIVE = agreement()
AMOUNT_3000 = NewTerms(None, 3000, None)


def _modify(
    current: Agreement | None = ACTIVE, terms: NewTerms = AMOUNT_3000, based_on: int | None = None
) -> Verdict:
    return modifying.decide_modify(
        current, phone=PHONE, based_on=based_on, terms=terms, bounds=BOUNDS, now=NOW
    )


def test_an_unsign_cancels_with_a_new_version() -> None:
    verdict = unsigning.decide_unsign(agreement(), phone=PHONE, based_on=1, now=NOW)
    assert isinstance(verdict, Applied)
    assert verdict.after.status is AgreementStatus.CANCELLED and verdict.after.version == 2


def test_an_unsign_of_a_cancelled_agreement_is_unchanged_even_with_an_old_version() -> None:
    cancelled = agreement(status=AgreementStatus.CANCELLED, version=2)
    verdict = unsigning.decide_unsign(cancelled, phone=PHONE, based_on=1, now=NOW)
    assert verdict == Unchanged(cancelled)


def test_unsign_refusals_name_the_reason() -> None:
    assert unsigning.decide_unsign(None, phone=PHONE, based_on=None, now=NOW) == Refusal(
        ReasonCode.UNKNOWN_AGREEMENT, "no such agreement")  # fmt: skip
    other = unsigning.decide_unsign(agreement(), phone="13900000000", based_on=None, now=NOW)
    assert isinstance(other, Refusal) and other.code is ReasonCode.REQUEST_MISMATCH
    stale = unsigning.decide_unsign(agreement(version=3), phone=PHONE, based_on=2, now=NOW)
    assert isinstance(stale, Refusal) and stale.code is ReasonCode.STALE_CHANGE
    future = unsigning.decide_unsign(agreement(), phone=PHONE, based_on=5, now=NOW)
    assert isinstance(future, Refusal) and future.code is ReasonCode.REQUEST_MISMATCH


def test_the_bank_and_the_crm_are_told_about_a_cancel_with_its_version() -> None:
    verdict = unsigning.decide_unsign(agreement(), phone=PHONE, based_on=None, now=NOW)
    assert isinstance(verdict, Applied)
    notify = unsigning.tell_crm(verdict.after, ReasonCode.CANCELLED_BY_SUBSCRIBER)
    notice = unsigning.tell_bank(verdict.after, ReasonCode.CANCELLED_BY_SUBSCRIBER)
    assert str(notify.to) == "crm.GD" and notify.body.model_dump()["agreement_version"] == 2
    assert str(notice.to) == "bank.ICBC" and notice.body.model_dump()["bank_agreement_no"] == "BA-A1"
    answer = unsigning.answer_bank(verdict, Party(PartyKind.BANK, "ICBC"), "BA-A1", "m1")
    assert answer.correlation_id == "m1" and answer.body.model_dump()["agreement_version"] == 2


def test_a_modify_applies_only_the_terms_it_names() -> None:
    verdict = _modify()
    assert isinstance(verdict, Applied)
    assert (verdict.after.recharge_amount, verdict.after.recharge_threshold, verdict.after.version) == (
        3000,
        1000,
        2,
    )


def test_a_modify_that_changes_nothing_is_unchanged() -> None:
    assert isinstance(_modify(terms=NewTerms(1000, 5000, None)), Unchanged)


def test_each_invalid_modify_is_refused_as_other_with_a_reason() -> None:
    postpaid = agreement(user_type=UserType.POSTPAID, recharge_threshold=None, recharge_amount=None)
    cases = [
        _modify(terms=NewTerms(None, 10, None)),
        _modify(terms=NewTerms(None, 100_001, None)),
        _modify(terms=NewTerms(100_001, None, None)),
        _modify(terms=NewTerms(None, None, True)),
        _modify(current=postpaid, terms=NewTerms(None, 3000, None)),
    ]
    for verdict in cases:
        assert isinstance(verdict, Refusal) and verdict.code is ReasonCode.OTHER and verdict.reason


def test_auto_pay_is_allowed_where_the_province_allows_it() -> None:
    verdict = _modify(current=agreement(auto_pay_allowed=True), terms=NewTerms(None, None, True))
    assert isinstance(verdict, Applied) and verdict.after.auto_pay is True


def test_a_modify_of_a_cancelled_agreement_is_refused() -> None:
    cancelled = agreement(status=AgreementStatus.CANCELLED, version=2)
    blind = _modify(current=cancelled)
    stale = _modify(current=cancelled, based_on=1)
    assert isinstance(blind, Refusal) and blind.code is ReasonCode.UNKNOWN_AGREEMENT
    assert isinstance(stale, Refusal) and stale.code is ReasonCode.STALE_CHANGE
