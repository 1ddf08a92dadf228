"""Value types and enumerations shared by every message of the wire contract (CONTRACT.md, "Values").

Validation lives here once, so a model field reads like the contract's table.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

# Printable ASCII (0x20-0x7E) without "|" and "/": identifiers travel inside file records and paths.
_ASCII_ID = r"^[\x20-\x2e\x30-\x7b\x7d\x7e]{1,64}$"


def _nfc_name(value: str) -> str:
    # The contract asks for NFC; normalising (rather than refusing) keeps one person one name.
    normal = unicodedata.normalize("NFC", value)
    if not 1 <= len(normal) <= 64:
        raise ValueError("holder_name must be 1-64 characters")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in normal):
        raise ValueError("holder_name contains control or unassigned characters")
    return normal


def _business_date(value: str) -> str:
    date.fromisoformat(value)
    return value


Phone = Annotated[str, Field(pattern=r"^1[3-9][0-9]{9}$", description="11-digit mainland mobile number")]
AsciiId = Annotated[
    str, Field(pattern=_ASCII_ID, description="1-64 printable ASCII characters, no '|' or '/'")
]
HolderName = Annotated[str, AfterValidator(_nfc_name), Field(description="UTF-8 (NFC), 1-64 characters")]
AccountNo = Annotated[str, Field(pattern=r"^[0-9]{12,19}$", description="full card number, 12-19 digits")]
IdNo = Annotated[str, Field(pattern=r"^[0-9]{17}[0-9X]$", description="18-character resident ID number")]
Fen = Annotated[StrictInt, Field(ge=0, le=10_000_000_00, description="money in integer fen")]
PositiveFen = Annotated[StrictInt, Field(gt=0, le=10_000_000_00, description="money in integer fen, > 0")]
Version = Annotated[StrictInt, Field(ge=1, description="agreement_version, grows with each change")]
Count = Annotated[StrictInt, Field(ge=0)]
Last4 = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="last 4 digits of the card")]
Flag = StrictBool
Timestamp = AwareDatetime
BusinessDate = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="YYYY-MM-DD, Asia/Shanghai"),
    AfterValidator(_business_date),
]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lowercase hex SHA-256")]
Reason = Annotated[str, Field(max_length=500)]
# A subscriber's balance as BOSS reports it: a number in arrears has a negative one.
Balance = Annotated[
    StrictInt, Field(ge=-10_000_000_00, le=10_000_000_00, description="balance in integer fen, may be < 0")
]
FenTotal = Annotated[StrictInt, Field(ge=0, description="a sum of money in integer fen")]


def check_answer(answer: Any, *, refused: bool, granted: bool, granted_word: str) -> None:
    """The rules shared by `verify.response` and `sign.response`: a refusal names its reason code;
    a grant names the user type and auto-pay permission, and a prepaid one its threshold and amount."""
    if refused and answer.reason_code is None:
        raise ValueError("reason_code is required when REJECTED")
    if not granted:
        return
    if answer.user_type is None or answer.auto_pay_allowed is None:
        raise ValueError(f"user_type and auto_pay_allowed are required when {granted_word}")
    prepaid = answer.user_type is UserType.PREPAID
    if prepaid and (answer.recharge_threshold is None or answer.recharge_amount is None):
        raise ValueError("recharge_threshold and recharge_amount are required when PREPAID")


def check_change_result(result: Any) -> None:
    """`unsign.result` / `modify.result`, to a bank or a CRM: a refusal names its reason code, an
    OK names the agreement_version it produced."""
    if result.result == "REJECTED" and result.reason_code is None:
        raise ValueError("reason_code is required when REJECTED")
    if result.result == "OK" and result.agreement_version is None:
        raise ValueError("agreement_version is required when OK")


class Message(BaseModel):
    """Base of every wire body: JSON object, unknown fields ignored, strict JSON types."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class AccountType(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class IdType(StrEnum):
    ID_CARD = "ID_CARD"


class Channel(StrEnum):
    COUNTER = "COUNTER"
    ONLINE = "ONLINE"
    SELF_SERVICE = "SELF_SERVICE"
    OPERATOR_WEB = "OPERATOR_WEB"


class UserType(StrEnum):
    PREPAID = "PREPAID"
    POSTPAID = "POSTPAID"


class Decision(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Outcome(StrEnum):
    OK = "OK"
    REJECTED = "REJECTED"


class SyncOutcome(StrEnum):
    OK = "OK"
    FAILED = "FAILED"


class AgreementState(StrEnum):
    """Status in `sign.result`."""

    ACTIVE = "ACTIVE"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    REJECTED = "REJECTED"


class Scope(StrEnum):
    """Scope of a `recon.file`: agreements (flow 3), or a bank's debits / a BOSS's credits (flow 4, 1.1)."""

    DAILY = "DAILY"
    MONTHLY = "MONTHLY"
    DEBITS = "DEBITS"
    CREDITS = "CREDITS"


class ReconStatus(StrEnum):
    RECONCILED = "RECONCILED"
    REJECTED = "REJECTED"


class SyncAction(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class DebitOutcome(StrEnum):
    """`result` of `debit.result` (1.1)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"


class ReverseOutcome(StrEnum):
    """`result` of `reverse.result` (1.1)."""

    REVERSED = "REVERSED"
    NOTHING_TO_REVERSE = "NOTHING_TO_REVERSE"
    FAILED = "FAILED"


class DebitPurpose(StrEnum):
    """`purpose` of `debit.request` (1.1): `RECHARGE` for `LOW_BALANCE`, `BILL` for `MONTHLY_BILL`."""

    RECHARGE = "RECHARGE"
    BILL = "BILL"


class RechargeTrigger(StrEnum):
    """`trigger` of `recharge.request` and `recharge.notify` (1.1)."""

    LOW_BALANCE = "LOW_BALANCE"
    MONTHLY_BILL = "MONTHLY_BILL"


class RechargeStatus(StrEnum):
    """`status` of `recharge.result` to BOSS (1.1)."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    MANUAL_REVIEW = "MANUAL_REVIEW"


class RechargeEnd(StrEnum):
    """`status` of `recharge.notify` to a CRM (1.1): how a recharge ended."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class CreditOutcome(StrEnum):
    """`result` of `credit.result` from BOSS (1.1)."""

    OK = "OK"
    FAILED = "FAILED"


class ReasonCode(StrEnum):
    """`reason_code` values in answers (CONTRACT.md, "Reason codes")."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNAUTHORIZED_SENDER = "UNAUTHORIZED_SENDER"
    UNKNOWN_SEGMENT = "UNKNOWN_SEGMENT"
    ALREADY_SIGNED = "ALREADY_SIGNED"
    NUMBER_INACTIVE = "NUMBER_INACTIVE"
    BLACKLISTED = "BLACKLISTED"
    EXCLUSIVE_SERVICE = "EXCLUSIVE_SERVICE"
    NOT_SUBSCRIBER = "NOT_SUBSCRIBER"
    CRM_TIMEOUT = "CRM_TIMEOUT"
    UNKNOWN_REQUEST = "UNKNOWN_REQUEST"
    REQUEST_MISMATCH = "REQUEST_MISMATCH"
    DUPLICATE_AGREEMENT = "DUPLICATE_AGREEMENT"
    UNKNOWN_AGREEMENT = "UNKNOWN_AGREEMENT"
    STALE_CHANGE = "STALE_CHANGE"
    CANCELLED_BY_SUBSCRIBER = "CANCELLED_BY_SUBSCRIBER"
    RESOLVED_BY_OPERATOR = "RESOLVED_BY_OPERATOR"
    RECONCILIATION = "RECONCILIATION"
    OTHER = "OTHER"
    # flow 4 (1.1): refusals of a recharge.request, a bank's debit reasons, why a recharge failed
    RECHARGE_IN_PROGRESS = "RECHARGE_IN_PROGRESS"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    AUTO_PAY_OFF = "AUTO_PAY_OFF"
    NOT_DUE = "NOT_DUE"
    AMOUNT_NOT_ALLOWED = "AMOUNT_NOT_ALLOWED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    CARD_CANCELLED = "CARD_CANCELLED"
    BANK_UNAVAILABLE = "BANK_UNAVAILABLE"
    BANK_TIMEOUT = "BANK_TIMEOUT"
    CREDIT_FAILED = "CREDIT_FAILED"
    DEBIT_REFUSED = "DEBIT_REFUSED"
    REPEATED_DEBIT_FAILURE = "REPEATED_DEBIT_FAILURE"
    # flow 4 (1.1): the reason_code of MANUAL_REVIEW, a case's reason
    CREDIT_UNKNOWN = "CREDIT_UNKNOWN"
    REVERSAL_FAILED = "REVERSAL_FAILED"
    DEBIT_MISMATCH = "DEBIT_MISMATCH"
    CREDIT_CONFLICT = "CREDIT_CONFLICT"
    # flow 4 (1.1): settlement classes of DEBITS / CREDITS files (contracts.recon) that open cases
    DEBIT_MISSING_AT_HUB = "DEBIT_MISSING_AT_HUB"
    DEBIT_AMOUNT_MISMATCH = "DEBIT_AMOUNT_MISMATCH"
    DEBIT_MISSING_AT_BANK = "DEBIT_MISSING_AT_BANK"
    DEBIT_STATUS_MISMATCH = "DEBIT_STATUS_MISMATCH"
    CREDIT_MISSING_AT_BOSS = "CREDIT_MISSING_AT_BOSS"
    CREDIT_MISSING_AT_HUB = "CREDIT_MISSING_AT_HUB"
    CREDIT_AMOUNT_MISMATCH = "CREDIT_AMOUNT_MISMATCH"


class QueueReason(StrEnum):
    """`x-signhub-reason` header values on the manual and dead queues."""

    DUPLICATE_AGREEMENT = "DUPLICATE_AGREEMENT"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNAUTHORIZED_SENDER = "UNAUTHORIZED_SENDER"
    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    # manual queue only, flow 4 (1.1): case reasons and settlement classes
    CREDIT_UNKNOWN = "CREDIT_UNKNOWN"
    REVERSAL_FAILED = "REVERSAL_FAILED"
    DEBIT_MISMATCH = "DEBIT_MISMATCH"
    CREDIT_CONFLICT = "CREDIT_CONFLICT"
    DEBIT_MISSING_AT_HUB = "DEBIT_MISSING_AT_HUB"
    DEBIT_AMOUNT_MISMATCH = "DEBIT_AMOUNT_MISMATCH"
    DEBIT_MISSING_AT_BANK = "DEBIT_MISSING_AT_BANK"
    DEBIT_STATUS_MISMATCH = "DEBIT_STATUS_MISMATCH"
    CREDIT_MISSING_AT_BOSS = "CREDIT_MISSING_AT_BOSS"
    CREDIT_MISSING_AT_HUB = "CREDIT_MISSING_AT_HUB"
    CREDIT_AMOUNT_MISMATCH = "CREDIT_AMOUNT_MISMATCH"


# CRM refusals of a verify.request that the hub passes to the bank unchanged.
CRM_REFUSALS = frozenset(
    {
        ReasonCode.ALREADY_SIGNED,
        ReasonCode.NUMBER_INACTIVE,
        ReasonCode.BLACKLISTED,
        ReasonCode.EXCLUSIVE_SERVICE,
        ReasonCode.NOT_SUBSCRIBER,
        ReasonCode.OTHER,
    }
)
