"""Messages between a bank and the hub (CONTRACT.md, "From a bank" / "To a bank")."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from contracts.common import (
    AccountNo,
    AccountType,
    AgreementState,
    AsciiId,
    Channel,
    Decision,
    Fen,
    Flag,
    HolderName,
    IdNo,
    IdType,
    Message,
    Outcome,
    Phone,
    PositiveFen,
    Reason,
    ReasonCode,
    Timestamp,
    UserType,
    Version,
    check_answer,
    check_change_result,
)


def _one_of_request_or_session(request_id: str | None, session_id: str | None) -> None:
    if (request_id is None) == (session_id is None):
        raise ValueError("exactly one of request_id or session_id is required")


# --- from a bank --------------------------------------------------------------------------


class SignRequest(Message):
    """`sign.request`: bank-channel signing request (flow 2, step 2)."""

    request_id: AsciiId
    phone: Phone
    account_no: AccountNo
    account_type: AccountType
    holder_name: HolderName
    id_type: IdType
    id_no: IdNo
    channel: Channel
    requested_at: Timestamp | None = None

    @model_validator(mode="after")
    def _bank_channel_only(self) -> Self:
        if self.channel is Channel.OPERATOR_WEB:
            raise ValueError("channel OPERATOR_WEB is not a bank channel")
        return self


class SignConfirmed(Message):
    """`sign.confirmed`: the bank signed formally (flow 2 step 8; flow 1 step 5)."""

    request_id: AsciiId | None = None
    session_id: AsciiId | None = None
    bank_agreement_no: AsciiId
    phone: Phone
    account_no: AccountNo
    account_type: AccountType
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None
    signed_at: Timestamp

    @model_validator(mode="after")
    def _names_one_flow(self) -> Self:
        _one_of_request_or_session(self.request_id, self.session_id)
        return self


class SignFailed(Message):
    """`sign.failed`: the bank did not sign; the hub closes the flow without an answer."""

    request_id: AsciiId | None = None
    session_id: AsciiId | None = None
    reason: Reason

    @model_validator(mode="after")
    def _names_one_flow(self) -> Self:
        _one_of_request_or_session(self.request_id, self.session_id)
        return self


class BankUnsignRequest(Message):
    """`unsign.request` from a bank: the subscriber cancelled at the bank."""

    bank_agreement_no: AsciiId
    phone: Phone
    agreement_version: Version | None = None
    requested_at: Timestamp | None = None


class BankModifyRequest(Message):
    """`modify.request` from a bank: the subscriber changed terms at the bank."""

    bank_agreement_no: AsciiId
    phone: Phone
    agreement_version: Version | None = None
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None


# --- to a bank ----------------------------------------------------------------------------


class SignResponse(Message):
    """`sign.response`: answer to `sign.request` (flow 2, steps 5-6)."""

    request_id: AsciiId
    result: Decision
    reason_code: ReasonCode | None = None
    reason: Reason | None = None
    user_type: UserType | None = None
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay_allowed: Flag | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        check_answer(self, refused=self.result is Decision.REJECTED, granted=self.result is Decision.APPROVED,
                     granted_word="APPROVED")  # fmt: skip
        return self


class SignResult(Message):
    """`sign.result`: answer to `sign.confirmed` (flow 2 step 9; flow 1 step 6)."""

    request_id: AsciiId | None = None
    session_id: AsciiId | None = None
    bank_agreement_no: AsciiId
    status: AgreementState
    agreement_id: AsciiId | None = None
    agreement_version: Version | None = None
    reason_code: ReasonCode | None = None

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        _one_of_request_or_session(self.request_id, self.session_id)
        if self.status is AgreementState.ACTIVE:
            if self.agreement_id is None or self.agreement_version is None:
                raise ValueError("agreement_id and agreement_version are required when ACTIVE")
        elif self.reason_code is None:
            raise ValueError("reason_code is required when not ACTIVE")
        return self


class _ChangeResult(Message):
    bank_agreement_no: AsciiId
    result: Outcome
    reason_code: ReasonCode | None = None
    agreement_version: Version | None = None
    reason: Reason | None = None  # optional addition: a readable explanation of a refusal

    @model_validator(mode="after")
    def _conditional_fields(self) -> Self:
        check_change_result(self)
        return self


class BankUnsignResult(_ChangeResult):
    """`unsign.result` to a bank: answer to its `unsign.request`."""


class BankModifyResult(_ChangeResult):
    """`modify.result` to a bank: answer to its `modify.request`."""


class UnsignNotice(Message):
    """`unsign.notice`: the agreement was cancelled elsewhere; the bank cancels its own."""

    bank_agreement_no: AsciiId
    agreement_id: AsciiId
    agreement_version: Version
    reason_code: ReasonCode


class ModifyNotice(Message):
    """`modify.notice`: the terms changed at the operator."""

    bank_agreement_no: AsciiId
    agreement_id: AsciiId
    agreement_version: Version
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay: Flag | None = None
