"""Messages between a provincial CRM and the hub (CONTRACT.md, "From/To a provincial CRM")."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from contracts.common import (
    AccountType,
    AsciiId,
    Channel,
    Count,
    Fen,
    Flag,
    Last4,
    Message,
    Outcome,
    Phone,
    PositiveFen,
    Reason,
    ReasonCode,
    SyncAction,
    SyncOutcome,
    Timestamp,
    UserType,
    Version,
    check_answer,
    check_change_result,
)

# --- from a CRM ---------------------------------------------------------------------------


class VerifyResponse(Message):
    """`verify.response`: the CRM's answer to `verify.request` (flow 2, step 4)."""

    verify_id: AsciiId
    result: Outcome
    reason_code: ReasonCode | None = None
    existing_agreement_id: AsciiId | None = None
    user_type: UserType | None = None
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay_allowed: Flag | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        check_answer(self, refused=self.result is Outcome.REJECTED, granted=self.result is Outcome.OK,
                     granted_word="OK")  # fmt: skip
        return self


class SignSynced(Message):
    """`sign.synced`: the CRM recorded the agreement (flow 1 step 7; flow 2 step 11)."""

    agreement_id: AsciiId
    result: SyncOutcome
    reason: Reason | None = None


class CrmUnsignRequest(Message):
    """`unsign.request` from a CRM: the subscriber cancelled at the operator."""

    phone: Phone
    agreement_id: AsciiId | None = None
    agreement_version: Version | None = None
    requested_at: Timestamp | None = None


class CrmModifyRequest(Message):
    """`modify.request` from a CRM: the subscriber changed terms at the operator."""

    phone: Phone
    agreement_id: AsciiId | None = None
    agreement_version: Version | None = None
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None


class BossSync(Message):
    """`boss.sync`: the CRM syncs an agreement to its BOSS; the hub relays it unchanged."""

    agreement_id: AsciiId
    phone: Phone
    action: SyncAction
    user_type: UserType | None = None
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None


class ErrorsApplied(Message):
    """`errors.applied`: the CRM applied an error-handling file (flow 3, step 6)."""

    file_name: AsciiId
    applied: Count
    failed: Count


# --- to a CRM -----------------------------------------------------------------------------


class VerifyRequest(Message):
    """`verify.request`: may this number sign? (flow 2, step 3)."""

    verify_id: AsciiId
    phone: Phone
    bank_code: AsciiId
    channel: Channel
    account_type: AccountType | None = None


class SignNotify(Message):
    """`sign.notify`: a formal agreement exists (flow 2 step 10; flow 1 step 6)."""

    agreement_id: AsciiId
    agreement_version: Version
    phone: Phone
    bank_code: AsciiId
    account_last4: Last4
    user_type: UserType
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None
    channel: Channel
    signed_at: Timestamp


class UnsignNotify(Message):
    """`unsign.notify`: the agreement was cancelled at the bank or by the hub."""

    agreement_id: AsciiId
    agreement_version: Version
    phone: Phone
    reason_code: ReasonCode


class ModifyNotify(Message):
    """`modify.notify`: the terms changed at the bank."""

    agreement_id: AsciiId
    agreement_version: Version
    phone: Phone
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None


class _CrmChangeResult(Message):
    phone: Phone
    agreement_id: AsciiId | None = None
    result: Outcome
    reason_code: ReasonCode | None = None
    agreement_version: Version | None = None
    reason: Reason | None = None  # optional addition: a readable explanation of a refusal

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        check_change_result(self)
        return self


class CrmUnsignResult(_CrmChangeResult):
    """`unsign.result` to a CRM: answer to its `unsign.request`."""


class CrmModifyResult(_CrmChangeResult):
    """`modify.result` to a CRM: answer to its `modify.request`."""


class BossSynced(Message):
    """`boss.synced`: BOSS answered a `boss.sync`; relayed from BOSS's `agreement.synced`."""

    agreement_id: AsciiId
    result: SyncOutcome
    reason: Reason | None = None
