"""The wire models of contract 1.1 (flow 4, the recharge): their conditional fields and value rules,
and the hub's answer to them while flow 4 is not built: NOT_SUPPORTED (CONTRACT.md, "Reason codes")."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError

from contracts import catalogue
from contracts.common import (
    DebitOutcome,
    DebitPurpose,
    Message,
    QueueReason,
    ReasonCode,
    RechargeStatus,
    Scope,
)
from contracts.recharge import (
    CreditRequest,
    CreditResult,
    DebitQuery,
    DebitRequest,
    DebitResult,
    DebitReverse,
    RechargeNotify,
    RechargeRequest,
    RechargeResult,
    ReverseResult,
)
from contracts.recon import CREDITS_CLASSES, DEBITS_CLASSES, ReconFile, ReconResult, Totals
from contracts.rejection import MessageRejected
from contracts.routing import PartyKind
from hub.messaging.edge import Accepted, Delivery, Rejected, classify
from hub.messaging.refusal import rejection
from hub.parties import Registry
from hub.services.dispatch import route

TS = "2026-11-26T10:00:00+08:00"
REGISTRY = Registry.of(["ICBC", "CCB"], ["GD", "BJ"])
M = TypeVar("M", bound=Message)


def _wire(model: type[M], body: dict[str, Any]) -> M:
    """The model read as the edge reads it: from JSON text, strictly (a plain dict would need enums)."""
    return model.model_validate_json(json.dumps({k: v for k, v in body.items() if v is not None}))


def _debit_result(**over: Any) -> DebitResult:
    body = {"debit_id": "DB1", "result": "SUCCEEDED", "amount": 5000, "bank_txn_no": "T1", "debited_at": TS}
    return _wire(DebitResult, body | over)


def _recharge_request(**over: Any) -> RechargeRequest:
    body = {"recharge_id": "RC1", "phone": "13800138000", "trigger": "LOW_BALANCE", "balance": 500}
    return _wire(RechargeRequest, body | over)


def _recharge_result(**over: Any) -> RechargeResult:
    body = {"recharge_id": "RC1", "status": "COMPLETED", "amount": 5000, "debit_id": "DB1"}
    return _wire(RechargeResult, body | over)


def _notify(**over: Any) -> RechargeNotify:
    body = {"recharge_id": "RC1", "agreement_id": "A1", "agreement_version": 2, "phone": "13800138000",
            "status": "COMPLETED", "amount": 5000, "bank_code": "ICBC", "account_last4": "3445",
            "trigger": "LOW_BALANCE"}  # fmt: skip
    return _wire(RechargeNotify, body | over)


# --- debit.result / reverse.result (from a bank) -------------------------------------------


def test_a_succeeded_debit_result_with_its_bank_txn_no_and_debited_at_is_valid() -> None:
    result = _debit_result()

    assert result.result is DebitOutcome.SUCCEEDED and result.bank_txn_no == "T1"


@pytest.mark.parametrize("dropped", ["bank_txn_no", "debited_at"])
def test_a_succeeded_debit_result_without_bank_txn_no_or_debited_at_is_invalid(dropped: str) -> None:
    with pytest.raises(ValidationError, match="bank_txn_no and debited_at are required when SUCCEEDED"):
        _debit_result(**{dropped: None})


def test_a_failed_debit_result_without_a_reason_code_is_invalid() -> None:
    with pytest.raises(ValidationError, match="reason_code is required when FAILED"):
        _debit_result(result="FAILED", bank_txn_no=None, debited_at=None)


def test_a_failed_debit_result_carries_the_banks_reason_code() -> None:
    result = _debit_result(result="FAILED", bank_txn_no=None, debited_at=None, reason_code="ACCOUNT_FROZEN")

    assert result.reason_code is ReasonCode.ACCOUNT_FROZEN


def test_a_not_found_debit_result_with_amount_0_and_nothing_else_is_valid() -> None:
    result = _debit_result(result="NOT_FOUND", amount=0, bank_txn_no=None, debited_at=None)

    assert result.result is DebitOutcome.NOT_FOUND and result.amount == 0


@pytest.mark.parametrize("amount", [-1, "5000", 50.5])
def test_a_debit_result_amount_must_be_whole_non_negative_fen_as_a_json_integer(amount: object) -> None:
    with pytest.raises(ValidationError):
        _debit_result(amount=amount)


@pytest.mark.parametrize("result", ["REVERSED", "NOTHING_TO_REVERSE", "FAILED"])
def test_a_reverse_result_needs_only_its_ids_and_result(result: str) -> None:
    answer = _wire(ReverseResult, {"reversal_id": "RV1", "debit_id": "DB1", "result": result})

    assert answer.reason is None


# --- debit.request / debit.query / debit.reverse (to a bank) -------------------------------


@pytest.mark.parametrize("model", [DebitRequest, DebitReverse, CreditRequest])
def test_money_the_hub_asks_to_move_must_be_more_than_0_fen(model: type[Message]) -> None:
    body = {"debit_id": "DB1", "reversal_id": "RV1", "recharge_id": "RC1", "bank_agreement_no": "BA1",
            "phone": "13800138000", "purpose": "RECHARGE", "requested_at": TS, "reason_code": "BANK_TIMEOUT",
            "bank_code": "ICBC", "bank_txn_no": "T1"}  # fmt: skip

    assert _wire(model, body | {"amount": 1}).model_dump()["amount"] == 1
    with pytest.raises(ValidationError, match="greater than 0"):
        _wire(model, body | {"amount": 0})


def test_a_debit_request_needs_a_purpose_of_recharge_or_bill() -> None:
    body = {"debit_id": "DB1", "bank_agreement_no": "BA1", "phone": "13800138000", "amount": 5000,
            "requested_at": TS}  # fmt: skip

    assert _wire(DebitRequest, body | {"purpose": "BILL"}).purpose is DebitPurpose.BILL
    with pytest.raises(ValidationError):
        _wire(DebitRequest, body | {"purpose": "TOP_UP"})
    with pytest.raises(ValidationError):
        _wire(DebitRequest, body)


def test_a_debit_query_is_just_the_debit_id() -> None:
    assert DebitQuery(debit_id="DB1").model_dump(mode="json") == {"debit_id": "DB1"}


# --- recharge.request / credit.result (from BOSS) ------------------------------------------


def test_a_low_balance_recharge_request_without_a_balance_is_invalid() -> None:
    with pytest.raises(ValidationError, match="balance is required when LOW_BALANCE"):
        _recharge_request(balance=None)


def test_a_low_balance_recharge_request_may_name_a_negative_balance_and_no_amount() -> None:
    request = _recharge_request(balance=-250)

    assert request.balance == -250 and request.amount is None and request.bill_id is None


@pytest.mark.parametrize("dropped", ["amount", "bill_id"])
def test_a_monthly_bill_recharge_request_without_amount_or_bill_id_is_invalid(dropped: str) -> None:
    body: dict[str, Any] = {"trigger": "MONTHLY_BILL", "balance": None, "amount": 8800, "bill_id": "B202611"}
    body[dropped] = None

    with pytest.raises(ValidationError, match="amount and bill_id are required when MONTHLY_BILL"):
        _recharge_request(**body)


def test_a_monthly_bill_amount_of_0_is_valid_so_the_hub_can_answer_amount_not_allowed() -> None:
    request = _recharge_request(trigger="MONTHLY_BILL", balance=None, amount=0, bill_id="B202611")

    assert request.amount == 0


def test_a_recharge_request_with_an_unknown_trigger_is_invalid() -> None:
    with pytest.raises(ValidationError):
        _recharge_request(trigger="BIRTHDAY")


def test_a_credit_result_needs_only_the_recharge_id_and_result() -> None:
    answer = _wire(CreditResult, {"recharge_id": "RC1", "result": "FAILED"})

    assert answer.reason is None and answer.balance_after is None and answer.credited_at is None


# --- recharge.result (to BOSS) / recharge.notify (to a CRM) --------------------------------


def test_a_completed_recharge_result_needs_no_reason_code() -> None:
    assert _recharge_result().status is RechargeStatus.COMPLETED


@pytest.mark.parametrize("status", ["FAILED", "REJECTED", "MANUAL_REVIEW"])
def test_a_recharge_result_that_is_not_completed_without_a_reason_code_is_invalid(status: str) -> None:
    with pytest.raises(ValidationError, match="reason_code is required when not COMPLETED"):
        _recharge_result(status=status)


@pytest.mark.parametrize("reason", ["CREDIT_UNKNOWN", "REVERSAL_FAILED", "DEBIT_MISMATCH", "CREDIT_CONFLICT",
                                    *DEBITS_CLASSES, *CREDITS_CLASSES])  # fmt: skip
def test_manual_review_names_a_case_reason_or_a_settlement_class_as_its_reason_code(reason: str) -> None:
    result = _recharge_result(status="MANUAL_REVIEW", reason_code=reason)

    assert result.reason_code == reason
    assert QueueReason(reason).value == reason  # the manual queue's header takes the same values


def test_a_rejected_recharge_result_may_omit_amount_agreement_and_debit() -> None:
    result = _wire(RechargeResult, {"recharge_id": "RC1", "status": "REJECTED", "reason_code": "NOT_DUE"})

    assert result.amount is None and result.agreement_id is None and result.debit_id is None


def test_a_failed_recharge_notify_without_a_reason_code_is_invalid() -> None:
    with pytest.raises(ValidationError, match="reason_code is required when FAILED"):
        _notify(status="FAILED")


def test_a_recharge_notify_is_completed_or_failed_never_rejected() -> None:
    assert _notify(status="FAILED", reason_code="BANK_TIMEOUT").reason_code is ReasonCode.BANK_TIMEOUT
    with pytest.raises(ValidationError):
        _notify(status="REJECTED", reason_code="NOT_DUE")


# --- files: scopes, classes and totals ------------------------------------------------------


@pytest.mark.parametrize("scope", ["DEBITS", "CREDITS"])
def test_a_recon_file_may_have_the_settlement_scopes_of_1_1(scope: str) -> None:
    body = {"file_name": "F.txt", "business_date": "2026-11-25", "scope": scope, "record_count": 3,
            "sha256": "0" * 64}  # fmt: skip

    assert _wire(ReconFile, body).scope is Scope(scope)


def test_a_recon_result_carries_the_files_totals_in_fen_and_its_record_count() -> None:
    result = _wire(ReconResult, {
        "file_name": "F.txt", "status": "RECONCILED", "counts": dict.fromkeys(DEBITS_CLASSES, 0),
        "totals": {"debited": 20_000_000_00, "reversed": 5000, "credited": 0, "count": 4001},
    })  # fmt: skip

    assert result.totals == Totals(debited=20_000_000_00, reversed=5000, credited=0, count=4001)


def test_a_recon_result_without_totals_is_still_valid_as_in_version_1() -> None:
    assert _wire(ReconResult, {"file_name": "F.txt", "status": "RECONCILED", "counts": {}}).totals is None


def test_the_settlement_classes_are_reason_codes_and_manual_queue_reasons() -> None:
    assert DEBITS_CLASSES == ("DEBIT_MISSING_AT_HUB", "DEBIT_AMOUNT_MISMATCH", "DEBIT_MISSING_AT_BANK",
                              "DEBIT_STATUS_MISMATCH")  # fmt: skip
    assert CREDITS_CLASSES == ("CREDIT_MISSING_AT_BOSS", "CREDIT_MISSING_AT_HUB", "CREDIT_AMOUNT_MISMATCH")
    for name in DEBITS_CLASSES + CREDITS_CLASSES:
        assert ReasonCode(name) and QueueReason(name)


# --- the catalogue and the hub's answer while flow 4 is not built ---------------------------


def test_the_catalogue_names_every_flow_4_type_with_the_right_party_kind_and_model() -> None:
    inbound = {(e.kind, e.type): e.model for e in catalogue.INBOUND}
    outbound = {(e.kind, e.type): e.model for e in catalogue.OUTBOUND}
    bank, crm, boss = PartyKind.BANK, PartyKind.CRM, PartyKind.BOSS

    assert {key: inbound[key] for key in [(bank, "debit.result"), (bank, "reverse.result"),
            (boss, "recharge.request"), (boss, "credit.result"), (boss, "recon.file")]} == {
        (bank, "debit.result"): DebitResult, (bank, "reverse.result"): ReverseResult,
        (boss, "recharge.request"): RechargeRequest, (boss, "credit.result"): CreditResult,
        (boss, "recon.file"): ReconFile,
    }  # fmt: skip
    assert {key: outbound[key] for key in [(bank, "debit.request"), (bank, "debit.query"),
            (bank, "debit.reverse"), (crm, "recharge.notify"), (boss, "credit.request"),
            (boss, "recharge.result"), (boss, "recon.result"), (boss, "message.rejected")]} == {
        (bank, "debit.request"): DebitRequest, (bank, "debit.query"): DebitQuery,
        (bank, "debit.reverse"): DebitReverse, (crm, "recharge.notify"): RechargeNotify,
        (boss, "credit.request"): CreditRequest, (boss, "recharge.result"): RechargeResult,
        (boss, "recon.result"): ReconResult, (boss, "message.rejected"): MessageRejected,
    }  # fmt: skip


def _delivery(routing_key: str, body: dict[str, Any]) -> Delivery:
    return Delivery(routing_key=routing_key, body=json.dumps(body).encode(), message_id="m-1",
                    msg_type=routing_key.split(".", 2)[2], content_type="application/json",
                    headers={"x-schema-version": 1})  # fmt: skip


def _file(scope: str) -> dict[str, Any]:
    return {"file_name": "F.txt", "business_date": "2026-11-25", "scope": scope, "record_count": 0,
            "sha256": "0" * 64}  # fmt: skip


FLOW_4_INBOUND = [
    ("bank.ICBC.debit.result", {"debit_id": "DB1", "result": "FAILED", "amount": 5000,
                                "reason_code": "INSUFFICIENT_FUNDS"}),
    ("bank.ICBC.reverse.result", {"reversal_id": "RV1", "debit_id": "DB1", "result": "REVERSED"}),
    ("boss.GD.recharge.request", {"recharge_id": "RC1", "phone": "13800138000", "trigger": "MONTHLY_BILL",
                                  "amount": 8800, "bill_id": "B202611"}),
    ("boss.GD.credit.result", {"recharge_id": "RC1", "result": "OK"}),
    ("boss.GD.recon.file", _file("CREDITS")),
    ("bank.ICBC.recon.file", _file("DEBITS")),
]  # fmt: skip


@pytest.mark.parametrize(("routing_key", "body"), FLOW_4_INBOUND, ids=[rk for rk, _ in FLOW_4_INBOUND])
def test_the_edge_accepts_a_valid_flow_4_message_and_the_hub_answers_it_not_supported(
    routing_key: str, body: dict[str, Any]
) -> None:
    d = _delivery(routing_key, body)
    accepted = classify(d, REGISTRY, require_user_id=False, max_body=64 * 1024)
    assert isinstance(accepted, Accepted)

    why = route(accepted)

    assert isinstance(why, str) and "not handled by this hub yet" in why
    answer = rejection(d, Rejected(QueueReason.NOT_SUPPORTED, [why], accepted.sender, accepted.msg_type))
    assert isinstance(answer, MessageRejected)
    assert (answer.reason_code, answer.message_id, answer.type) == (ReasonCode.NOT_SUPPORTED, "m-1",
                                                                    accepted.msg_type)  # fmt: skip


@pytest.mark.parametrize("routing_key", ["bank.ICBC.recon.file", "crm.GD.recon.file"])
@pytest.mark.parametrize("scope", ["DAILY", "MONTHLY"])
def test_flow_3_files_of_banks_and_crms_still_go_to_their_handler(routing_key: str, scope: str) -> None:
    accepted = classify(_delivery(routing_key, _file(scope)), REGISTRY, require_user_id=False, max_body=65536)
    assert isinstance(accepted, Accepted)

    assert callable(route(accepted))


@pytest.mark.parametrize(
    ("routing_key", "scope"),
    [("crm.GD.recon.file", "DEBITS"), ("crm.GD.recon.file", "CREDITS"), ("bank.ICBC.recon.file", "CREDITS"),
     ("boss.GD.recon.file", "DAILY"), ("boss.GD.recon.file", "DEBITS")],
)  # fmt: skip
def test_a_recon_file_of_a_scope_its_sender_kind_never_sends_is_invalid(routing_key: str, scope: str) -> None:
    refused = classify(_delivery(routing_key, _file(scope)), REGISTRY, require_user_id=False, max_body=65536)

    assert isinstance(refused, Rejected) and refused.reason is QueueReason.INVALID_MESSAGE
    assert refused.errors[0].startswith("scope: ") and scope in refused.errors[0]
