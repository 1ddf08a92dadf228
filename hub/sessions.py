"""The hub's record of a flow-1 signing session (operator channel), as plain immutable data.

A web hall opens a session for a number its CRM cleared; the browser passes through the hub to
the chosen bank's signing page; the bank confirms (or fails) naming the `session_id`. The session
never holds a card or ID number: the account arrives only with `sign.confirmed`, into the agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.agreements import Terms


class SessionState(StrEnum):
    CREATED = "CREATED"  # the web hall holds the entry token; the browser has not come yet
    ENTERED = "ENTERED"  # the browser passed the hub; the bank page holds the bank token
    AT_BANK = "AT_BANK"  # the bank redeemed its token: the subscriber is on the bank's page
    ACTIVE = "ACTIVE"  # confirmed; the agreement is active
    MANUAL_REVIEW = "MANUAL_REVIEW"  # confirmed; a second agreement for the number waits for an operator
    FAILED = "FAILED"  # the bank reported sign.failed
    EXPIRED = "EXPIRED"  # not completed within the session window

    @property
    def open(self) -> bool:
        return self in {SessionState.CREATED, SessionState.ENTERED, SessionState.AT_BANK}

    @property
    def confirmed(self) -> bool:
        return self in {SessionState.ACTIVE, SessionState.MANUAL_REVIEW}


@dataclass(frozen=True, slots=True)
class SigningSession:
    session_id: str
    hall: str
    phone: str
    province: str
    bank: str
    terms: Terms
    return_url: str
    notify_url: str | None
    state: SessionState
    created_at: datetime
    expires_at: datetime
    hall_ref: str | None = None
    nonce: str | None = None  # binds the one outstanding token (entry or bank) to this session
    reason: str | None = None
    reason_code: str | None = None
    agreement_id: str | None = None
    bank_agreement_no: str | None = None
    confirm_message_id: str | None = None
    confirm_fingerprint: str | None = None
    notice: str | None = None  # the result of the bank's notice, once the hub took it (to pass on)

    @property
    def key(self) -> str:
        """The flow key of agreements, cases and events (flow 2 uses `<bank>|<request_id>`)."""
        return f"session:{self.session_id}"
