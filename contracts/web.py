"""The hub's HTTP signing entry for flow 1 (operator channel): what web halls and bank pages send
and get. Not part of the AMQP catalogue; the same value rules apply (CONTRACT.md, "Values").

- A web hall `POST /web/sessions` (bearer key) with a `SessionRequest`; gets `SessionCreated`.
- The browser goes to `entry_url`; the hub redirects it to the bank's page with a bank token.
- The bank page `POST /web/bank/redeem` with the token; gets `BankSession` (once).
- The bank sends its `SigningNotice` to `notice_url` (the web hall, or the hub for banks that
  notify through it; the hub passes it on to the web hall).
- The web hall `GET /web/sessions/{session_id}` (bearer key); gets `SessionStatus`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from contracts.common import AsciiId, Fen, Flag, Message, PositiveFen, Reason, UserType

Phone = Annotated[str, Field(pattern=r"^1[3-9][0-9]{9}$")]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,16}$")]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]{1,500}$")]


class SessionRequest(Message):
    """A web hall opens a signing session for a number its CRM cleared, on the CRM's terms."""

    phone: Phone
    province: Code
    bank: Code
    user_type: UserType
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay_allowed: Flag
    return_url: Url
    notify_url: Url | None = None
    hall_ref: AsciiId | None = None

    @model_validator(mode="after")
    def _terms(self) -> Self:
        prepaid = self.user_type is UserType.PREPAID
        given = self.recharge_threshold is not None and self.recharge_amount is not None
        if prepaid and not given:
            raise ValueError("recharge_threshold and recharge_amount are required when PREPAID")
        if not prepaid and (self.recharge_threshold is not None or self.recharge_amount is not None):
            raise ValueError("recharge_threshold and recharge_amount are for PREPAID numbers only")
        return self


class SessionCreated(Message):
    session_id: AsciiId
    entry_url: str
    status_url: str
    expires_at: datetime


class SessionStatus(Message):
    """Where a session stands; `state` is one of hub.sessions.SessionState."""

    session_id: AsciiId
    state: str
    bank: str
    phone: str
    expires_at: datetime
    reason_code: str | None = None
    reason: Reason | None = None
    agreement_id: str | None = None
    hall_ref: str | None = None


class BankSession(Message):
    """What the bank page learns when it redeems its token: whom to sign, on which terms."""

    session_id: AsciiId
    bank: Code
    phone: Phone
    user_type: UserType
    recharge_threshold: Fen | None = None
    recharge_amount: PositiveFen | None = None
    auto_pay_allowed: Flag
    expires_at: datetime
    return_url: Url
    notice_url: Url | None = None


class RedeemRequest(Message):
    token: Annotated[str, Field(min_length=1, max_length=2000)]


class NoticeResult(StrEnum):
    SIGNED = "SIGNED"
    FAILED = "FAILED"


class SigningNotice(Message):
    """The bank's notice to the web hall (flow 1 step 5), directly or through the hub."""

    session_id: AsciiId
    bank: Code
    result: NoticeResult
    reason: Reason | None = None
    bank_agreement_no: AsciiId | None = None
    relayed_by: str | None = None  # "signhub" when the hub passed it on


class WebError(Message):
    """Every refusal of the signing entry: a code a program can test, and a sentence."""

    error: str
    detail: str
