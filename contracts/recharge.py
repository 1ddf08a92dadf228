"""Messages of flow 4, the recharge (CONTRACT.md 1.1, "Recharge (flow 4)"), by party.

BOSS asks with `recharge.request`; the hub debits the agreement's bank (`debit.request`, asked
again with `debit.query`, undone with `debit.reverse`), credits the number at BOSS
(`credit.request`), and tells BOSS the outcome (`recharge.result`) and the CRM how it ended
(`recharge.notify`). A bank's `DEBITS` file and a BOSS's `CREDITS` file are `recon.file` (contracts.recon).
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from contracts.common import (
    AsciiId,
    Balance,
    CreditOutcome,
    DebitOutcome,
    DebitPurpose,
    Fen,
    Last4,
    Message,
    Phone,
    PositiveFen,
    Reason,
    ReasonCode,
    RechargeEnd,
    RechargeStatus,
    RechargeTrigger,
    ReverseOutcome,
    Timestamp,
    Version,
)

# --- from a bank --------------------------------------------------------------------------


class DebitResult(Message):
    """`debit.result` from a bank: answer to `debit.request` or `debit.query`; `NOT_FOUND` (amount 0)
    when the debit never reached the bank."""

    debit_id: AsciiId
    result: DebitOutcome
    amount: Fen
    reason_code: ReasonCode | None = None
    bank_txn_no: AsciiId | None = None
    debited_at: Timestamp | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        if self.result is DebitOutcome.FAILED and self.reason_code is None:
            raise ValueError("reason_code is required when FAILED")
        if self.result is DebitOutcome.SUCCEEDED and (self.bank_txn_no is None or self.debited_at is None):
            raise ValueError("bank_txn_no and debited_at are required when SUCCEEDED")
        return self


class ReverseResult(Message):
    """`reverse.result` from a bank: answer to `debit.reverse`."""

    reversal_id: AsciiId
    debit_id: AsciiId
    result: ReverseOutcome
    reason: Reason | None = None


# --- to a bank ----------------------------------------------------------------------------


class DebitRequest(Message):
    """`debit.request` to a bank: debit the agreement's account (flow 4)."""

    debit_id: AsciiId
    bank_agreement_no: AsciiId
    phone: Phone
    amount: PositiveFen
    purpose: DebitPurpose
    requested_at: Timestamp


class DebitQuery(Message):
    """`debit.query` to a bank: what became of this debit? Answered with `debit.result`."""

    debit_id: AsciiId


class DebitReverse(Message):
    """`debit.reverse` to a bank: return the money if it was taken, and never execute the debit later."""

    reversal_id: AsciiId
    debit_id: AsciiId
    amount: PositiveFen
    reason_code: ReasonCode


# --- to a provincial CRM ------------------------------------------------------------------


class RechargeNotify(Message):
    """`recharge.notify` to a CRM: a recharge ended; the CRM tells the subscriber by SMS."""

    recharge_id: AsciiId
    agreement_id: AsciiId
    agreement_version: Version
    phone: Phone
    status: RechargeEnd
    amount: PositiveFen
    bank_code: AsciiId
    account_last4: Last4
    trigger: RechargeTrigger
    reason_code: ReasonCode | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        if self.status is RechargeEnd.FAILED and self.reason_code is None:
            raise ValueError("reason_code is required when FAILED")
        return self


# --- from BOSS ----------------------------------------------------------------------------


class RechargeRequest(Message):
    """`recharge.request` from BOSS: recharge this number under its agreement (flow 4, step 1).

    `amount` is not checked for > 0 here: an amount the hub does not allow is answered
    `recharge.result` `REJECTED`, `AMOUNT_NOT_ALLOWED`, not refused as invalid."""

    recharge_id: AsciiId
    phone: Phone
    trigger: RechargeTrigger
    balance: Balance | None = None
    amount: Fen | None = None
    bill_id: AsciiId | None = None
    agreement_id: AsciiId | None = None
    requested_at: Timestamp | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        if self.trigger is RechargeTrigger.LOW_BALANCE and self.balance is None:
            raise ValueError("balance is required when LOW_BALANCE")
        if self.trigger is RechargeTrigger.MONTHLY_BILL and (self.amount is None or self.bill_id is None):
            raise ValueError("amount and bill_id are required when MONTHLY_BILL")
        return self


class CreditResult(Message):
    """`credit.result` from BOSS: answer to `credit.request`."""

    recharge_id: AsciiId
    result: CreditOutcome
    reason: Reason | None = None
    balance_after: Balance | None = None
    credited_at: Timestamp | None = None


# --- to BOSS ------------------------------------------------------------------------------


class CreditRequest(Message):
    """`credit.request` to BOSS: the bank was debited; credit the number (flow 4, step 5)."""

    recharge_id: AsciiId
    debit_id: AsciiId
    phone: Phone
    amount: PositiveFen
    bank_code: AsciiId
    bank_txn_no: AsciiId


class RechargeResult(Message):
    """`recharge.result` to BOSS: the outcome; after `MANUAL_REVIEW` exactly one more, `COMPLETED`
    or `FAILED`."""

    recharge_id: AsciiId
    status: RechargeStatus
    reason_code: ReasonCode | None = None
    amount: Fen | None = None
    agreement_id: AsciiId | None = None
    agreement_version: Version | None = None
    debit_id: AsciiId | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        if self.status is not RechargeStatus.COMPLETED and self.reason_code is None:
            raise ValueError("reason_code is required when not COMPLETED")
        return self
