"""The simulators' checksums, generated world and pure decisions (no broker)."""

from __future__ import annotations

import random

import pytest

from contracts.common import AccountType, Outcome, ReasonCode, UserType
from contracts.crm import VerifyResponse
from hub.segments import SegmentTable
from simulators.bank_records import BankKnobs
from simulators.checks import id_checksum_ok, id_complete, luhn_complete, luhn_ok
from simulators.crm_register import verify_answer
from simulators.recording import Recorder
from simulators.seed import OPERATOR_BLOCKS, REFUSAL_KINDS, AccountStatus, SubscriberStatus, build_world
from simulators.sms import signed_text

SMALL_TABLE = SegmentTable.from_rows({"1380013": "GD", "1390100": "BJ", "138": "SH", "1380": "GD"})


@pytest.mark.parametrize("card", ["4111111111111111", "79927398713", "6011000990139424", "378282246310005"])
def test_luhn_accepts_known_valid_numbers_and_completes_them_back(card: str) -> None:
    assert luhn_ok(card)
    assert luhn_complete(card[:-1]) == card


def test_luhn_refuses_a_changed_digit_and_non_digits() -> None:
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("79927398710")
    assert not luhn_ok("4111-1111-1111-1111")
    assert not luhn_ok("")
    assert not luhn_ok("０１")  # full-width digits are digits to Python, not to a bank


def test_luhn_complete_appends_the_one_digit_that_makes_the_number_valid() -> None:
    rng = random.Random(1)
    for _ in range(200):
        partial = "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 18)))
        full = luhn_complete(partial)
        assert full[:-1] == partial and luhn_ok(full)
        assert sum(luhn_ok(partial + d) for d in "0123456789") == 1


def test_id_checksum_follows_gb_11643_including_the_x_check_character() -> None:
    assert id_checksum_ok("11010519491231002X")
    assert id_checksum_ok("440524188001010014")
    assert not id_checksum_ok("110105194912310021")
    assert not id_checksum_ok("11010519491231002x")
    assert not id_checksum_ok("11010519491231002")
    assert id_complete("11010519491231002") == "11010519491231002X"
    with pytest.raises(ValueError, match="17 digits"):
        id_complete("1101051949123100")


def test_the_same_seed_builds_the_same_world_and_another_seed_another() -> None:
    first = build_world(42, ["ICBC", "CCB"], ["GD", "BJ"], 10)
    again = build_world(42, ["ICBC", "CCB"], ["GD", "BJ"], 10)
    other = build_world(43, ["ICBC", "CCB"], ["GD", "BJ"], 10)
    assert first == again
    assert first != other


def test_every_province_has_each_refusal_kind_and_numbers_that_may_sign() -> None:
    world = build_world(7, ["ICBC"], ["GD", "BJ", "XJ"], 8)
    for province, subscribers in world.subscribers.items():
        kinds = [s.expected_refusal for s in subscribers]
        assert set(REFUSAL_KINDS) <= set(kinds), province
        assert world.signable(province), province
    for reason in REFUSAL_KINDS:
        assert len(world.refused(reason)) == 3


def test_phones_are_unique_valid_and_in_their_province() -> None:
    table = SegmentTable.load()
    world = build_world(3, ["ABC"], ["GD", "SH", "XZ", "HI"], 30, segments=table)
    phones = [s.phone for subs in world.subscribers.values() for s in subs]
    assert len(set(phones)) == len(phones)
    for province, subscribers in world.subscribers.items():
        for subscriber in subscribers:
            assert len(subscriber.phone) == 11 and subscriber.phone[1] in "3456789"
            assert table.province_of(subscriber.phone) == province


def test_a_small_table_keeps_numbers_under_the_longest_matching_prefix() -> None:
    world = build_world(5, ["CMB"], ["GD", "BJ"], 12, segments=SMALL_TABLE)
    for province, subscribers in world.subscribers.items():
        assert all(SMALL_TABLE.province_of(s.phone) == province for s in subscribers)


def test_a_province_without_segments_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'YN'"):
        build_world(5, ["CMB"], ["YN"], 6, segments=SMALL_TABLE)


def test_accounts_are_valid_cards_of_their_bank_with_valid_ids() -> None:
    world = build_world(11, ["ICBC", "CMB", "CIB", "NEWBANK"], ["GD"], 10)
    for bank, accounts in world.accounts.items():
        assert accounts[0].status is AccountStatus.FROZEN
        assert not accounts[1].online_banking
        for account in accounts:
            assert luhn_ok(account.account_no) and 16 <= len(account.account_no) <= 19
            assert id_checksum_ok(account.id_no)
            assert account.bank == bank
            assert account.account_type in (AccountType.DEBIT, AccountType.CREDIT)
    assert all(a.account_no.startswith(("622202", "625330")) for a in world.accounts["ICBC"])
    names = [a.holder_name for accounts in world.accounts.values() for a in accounts]
    assert any("·" in name for name in names)


def test_an_accounts_repr_masks_the_card_and_id_numbers() -> None:
    account = build_world(1, ["ICBC"], ["GD"], 6).accounts["ICBC"][2]
    text = repr(account)
    assert account.account_no not in text and account.id_no not in text
    assert account.masked_account_no.startswith(account.account_no[:6])
    assert account.masked_account_no.endswith(account.account_no[-4:])


def test_prepaid_subscribers_have_terms_and_only_allowed_postpaid_ones_auto_pay() -> None:
    world = build_world(9, ["ICBC"], ["GD", "XZ"], 40)
    for subscriber in (s for subs in world.subscribers.values() for s in subs):
        if subscriber.user_type is UserType.PREPAID:
            assert subscriber.recharge_threshold is not None and subscriber.recharge_amount
            assert not subscriber.auto_pay_allowed
        else:
            assert subscriber.recharge_amount is None
            assert subscriber.auto_pay_allowed == (subscriber.province != "XZ")


def test_the_crm_answers_each_subscriber_with_its_expected_refusal_or_its_terms() -> None:
    world = build_world(2, ["ICBC"], ["GD"], 12)
    for subscriber in world.subscribers["GD"]:
        known = subscriber if subscriber.in_register else None
        answer = verify_answer("V1", known, subscriber.existing_agreement_id)
        assert answer.reason_code == subscriber.expected_refusal
        if answer.result is Outcome.OK:
            assert answer.user_type is subscriber.user_type
            assert answer.auto_pay_allowed == subscriber.auto_pay_allowed
    signed = world.refused(ReasonCode.ALREADY_SIGNED)[0]
    answer = verify_answer("V2", signed, signed.existing_agreement_id)
    assert answer.existing_agreement_id == signed.existing_agreement_id


def test_an_existing_agreement_is_answered_before_an_inactive_status() -> None:
    subscriber = build_world(2, ["ICBC"], ["GD"], 6).refused(ReasonCode.NUMBER_INACTIVE)[0]
    assert subscriber.status in (SubscriberStatus.SUSPENDED, SubscriberStatus.CLOSED)
    answer = verify_answer("V3", subscriber, "AGR1")
    assert answer.reason_code is ReasonCode.ALREADY_SIGNED


def test_every_verify_answer_is_a_valid_wire_message() -> None:
    world = build_world(4, ["ICBC"], ["GD"], 10)
    for subscriber in world.subscribers["GD"]:
        answer = verify_answer("V4", subscriber, None)
        assert VerifyResponse.model_validate_json(answer.model_dump_json(exclude_none=True)) == answer


def test_bank_knobs_pick_failing_and_held_phones() -> None:
    rng = random.Random(0)
    assert BankKnobs(fail_after_approval=frozenset({"13800138000"})).fails("13800138000", rng)
    assert not BankKnobs(fail_after_approval=0.0).fails("13800138000", rng)
    assert BankKnobs(fail_after_approval=1.0).fails("13800138000", rng)
    assert BankKnobs(hold=True).holds("13900000000")
    assert not BankKnobs(hold=frozenset({"1"})).holds("13900000000")


def test_the_signing_sms_names_the_bank_the_card_end_the_terms_and_how_to_cancel() -> None:
    text = signed_text("ICBC", "1234", 1000, 5000, False)
    assert "中国工商银行" in text and "1234" in text and "10.00元" in text and "50.00元" in text
    assert "QXYD" in text


async def test_a_bounded_wait_names_what_did_not_arrive_and_what_did() -> None:
    recorder = Recorder("bank.ICBC")
    with pytest.raises(TimeoutError, match=r"bank\.ICBC: sign\.response of R1 did not arrive within 0\.05 s"):
        await recorder.wait_until(lambda: False, "sign.response of R1", 0.05)


def test_subscribers_have_the_operators_numbers_and_strangers_another_carriers() -> None:
    world = build_world(6, ["ICBC"], ["GD", "SC"], 10, segments=SegmentTable.load())
    for subscriber in (s for subs in world.subscribers.values() for s in subs):
        own_block = subscriber.phone[:3] in OPERATOR_BLOCKS
        assert own_block == subscriber.in_register, subscriber
