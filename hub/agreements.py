"""The hub's own records: signing flows, agreements and manual cases, as plain immutable data.

Flows decide on these; the store persists them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.common import AccountType, Channel, UserType


class FlowState(StrEnum):
    VERIFYING = "VERIFYING"  # asked the home CRM; timer running
    APPROVED = "APPROVED"  # the bank may confirm within the approval window
    REJECTED = "REJECTED"  # refused before any agreement (CRM or hub rule)
    TIMED_OUT = "TIMED_OUT"  # the CRM stayed silent
    FAILED = "FAILED"  # the bank reported sign.failed
    ACTIVE = "ACTIVE"  # confirmed; agreement active
    MANUAL_REVIEW = "MANUAL_REVIEW"  # confirmed; waits for an operator
    CONFIRM_REJECTED = "CONFIRM_REJECTED"  # confirmed; the operator kept the existing agreement

    @property
    def confirmed(self) -> bool:
        return self in {FlowState.ACTIVE, FlowState.MANUAL_REVIEW, FlowState.CONFIRM_REJECTED}


class AgreementStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    PENDING_REVIEW = "PENDING_REVIEW"  # held by a manual case; never more than one ACTIVE per phone
    REJECTED = "REJECTED"  # a held confirmation the operator refused


@dataclass(frozen=True, slots=True)
class Terms:
    """What the home CRM allows for a number (verify.response)."""

    user_type: UserType
    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay_allowed: bool


@dataclass(frozen=True, slots=True)
class Account:
    """A bank account as the hub keeps it: never the clear number."""

    fingerprint: str  # keyed HMAC of the full number, for "same account?" checks
    last4: str
    encrypted: str  # Fernet token of the full number
    account_type: AccountType


@dataclass(frozen=True, slots=True)
class SigningFlow:
    """One bank-channel signing, identified by (bank, request_id)."""

    bank: str
    request_id: str
    phone: str
    province: str
    account: Account
    channel: Channel
    request_message_id: str
    request_fingerprint: str
    state: FlowState
    created_at: datetime
    verify_id: str | None = None
    asks: int = 0
    deadline: datetime | None = None
    terms: Terms | None = None
    reason_code: str | None = None
    approved_at: datetime | None = None
    confirm_message_id: str | None = None
    confirm_fingerprint: str | None = None
    agreement_id: str | None = None
    id_encrypted: str | None = None

    @property
    def key(self) -> str:
        return f"{self.bank}|{self.request_id}"


@dataclass(frozen=True, slots=True)
class Agreement:
    agreement_id: str
    version: int
    status: AgreementStatus
    phone: str
    province: str
    bank: str
    bank_agreement_no: str
    account: Account
    user_type: UserType
    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay: bool
    channel: Channel
    signed_at: datetime
    updated_at: datetime
    flow_key: str | None = None
    auto_pay_allowed: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    """A duplicate-signing conflict waiting for an operator."""

    case_id: str
    phone: str
    new_agreement_id: str
    existing_agreement_id: str
    flow_key: str
    message_id: str
    sender: str
    opened_at: datetime
    source: str = "SIGNING"
    state: str = "OPEN"
