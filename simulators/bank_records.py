"""What a simulated bank keeps (knobs, one `Outcome` per request, its agreements) and its pure rules."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.bank import SignConfirmed, SignRequest, SignResponse
from contracts.common import AgreementState, Channel, Decision, IdType, UserType
from simulators.checks import id_checksum_ok, luhn_ok
from simulators.seed import Account, AccountStatus
from simulators.timefmt import now_local


@dataclass(frozen=True, slots=True)
class BankKnobs:
    """How a simulated bank misbehaves.

    `fail_after_approval`: a probability, or the phones, for which the bank sends `sign.failed`
    instead of signing. `hold`: phones (or True: all) whose approval waits for `confirm_for`.
    `send_twice`: every message is published twice under one `message_id`.
    """

    delay_s: float = 0.0
    fail_after_approval: float | frozenset[str] = 0.0
    send_twice: bool = False
    hold: bool | frozenset[str] = frozenset()
    seed: int = 0

    def fails(self, phone: str, rng: random.Random) -> bool:
        if isinstance(self.fail_after_approval, frozenset):
            return phone in self.fail_after_approval
        return rng.random() < self.fail_after_approval

    def holds(self, phone: str) -> bool:
        return self.hold if isinstance(self.hold, bool) else phone in self.hold


@dataclass(slots=True)
class Outcome:
    """Everything that happened to one signing request the bank started."""

    request_id: str
    phone: str
    account: Account
    channel: Channel
    local_refusal: str | None = None
    sign_response: dict[str, Any] | None = None
    sign_results: list[dict[str, Any]] = field(default_factory=list)
    failed: bool = False
    bank_agreement_no: str | None = None
    confirmations: list[str] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return self.sign_response is not None and self.sign_response.get("result") == Decision.APPROVED

    @property
    def status(self) -> str | None:
        """The status of the latest `sign.result`, if any."""
        return self.sign_results[-1].get("status") if self.sign_results else None

    @property
    def active(self) -> bool:
        return self.status == AgreementState.ACTIVE


@dataclass(slots=True)
class BankAgreement:
    """The bank's own copy of an agreement, keyed by its `bank_agreement_no`."""

    bank_agreement_no: str
    phone: str
    account: Account
    request_id: str | None
    status: str = "PENDING"  # PENDING, ACTIVE, MANUAL_REVIEW, CANCELLED
    agreement_id: str | None = None
    agreement_version: int = 0
    recharge_threshold: int | None = None
    recharge_amount: int | None = None
    auto_pay: bool | None = None
    signed_at: str = ""
    changed_at: str = ""  # last change, for the DAILY reconciliation file

    def apply_version(self, version: int | None) -> bool:
        """Take a change of `version`; False for one older than what the bank has (drop it)."""
        if version is not None and version <= self.agreement_version:
            return False
        if version is not None:
            self.agreement_version = version
        self.changed_at = now_local().isoformat()
        return True


def local_refusal(
    bank: str, phone: str, account: Account, channel: Channel, agreements: Iterable[BankAgreement]
) -> str | None:
    """Why the bank refuses before contacting the hub (DOMAIN.md flow 2 step 1), or None."""
    if account.bank != bank:
        return f"the account belongs to {account.bank}, not {bank}"
    if not luhn_ok(account.account_no):
        return f"card {account.masked_account_no} fails its check digit"
    if not id_checksum_ok(account.id_no):
        return f"ID {account.masked_id_no} fails its checksum"
    if account.status is not AccountStatus.NORMAL:
        return f"account {account.masked_account_no} is {account.status}"
    if channel is Channel.ONLINE and not account.online_banking:
        return "online banking is not opened for this account"
    if any(a.phone == phone and a.status == AgreementState.ACTIVE for a in agreements):
        return f"{phone} already has an agreement at {bank}"
    return None


def sign_request(request_id: str, phone: str, account: Account, channel: Channel) -> SignRequest:
    return SignRequest(
        request_id=request_id,
        phone=phone,
        account_no=account.account_no,
        account_type=account.account_type,
        holder_name=account.holder_name,
        id_type=IdType.ID_CARD,
        id_no=account.id_no,
        channel=channel,
        requested_at=now_local(),
    )


def confirmed_body(
    outcome: Outcome, response: SignResponse, bank_agreement_no: str, overrides: Mapping[str, Any]
) -> SignConfirmed:
    """The formal signing's notice: the terms the hub approved (threshold and amount if prepaid)."""
    prepaid = response.user_type is UserType.PREPAID
    fields: dict[str, Any] = {
        "request_id": outcome.request_id,
        "bank_agreement_no": bank_agreement_no,
        "phone": outcome.phone,
        "account_no": outcome.account.account_no,
        "account_type": outcome.account.account_type,
        "recharge_threshold": response.recharge_threshold if prepaid else None,
        "recharge_amount": response.recharge_amount if prepaid else None,
        "auto_pay": response.auto_pay_allowed,
        "signed_at": now_local(),
    }
    return SignConfirmed.model_validate({**fields, **overrides})


def agreement_of(outcome: Outcome, confirmed: SignConfirmed) -> BankAgreement:
    """The bank's own agreement, pending until the hub's `sign.result`."""
    return BankAgreement(
        bank_agreement_no=confirmed.bank_agreement_no,
        phone=confirmed.phone,
        account=outcome.account,
        request_id=outcome.request_id,
        recharge_threshold=confirmed.recharge_threshold,
        recharge_amount=confirmed.recharge_amount,
        auto_pay=confirmed.auto_pay,
        signed_at=confirmed.signed_at.isoformat(),
    )
