"""What a simulated provincial CRM knows and decides: its knobs, its agreements, its verify answer.

`verify_answer` is the CRM's rule of DOMAIN.md flow 2 step 4, as a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.common import Outcome, ReasonCode, UserType
from contracts.crm import VerifyResponse
from simulators.seed import Subscriber, SubscriberStatus


@dataclass(frozen=True, slots=True)
class CrmKnobs:
    """How a simulated CRM misbehaves.

    `silent`: phones (or True: all) whose `verify.request` is never answered. `answer_twice`:
    every verify answer is published again under a new `message_id`. `sync_fails`: phones whose
    `sign.notify` is answered `FAILED`.
    """

    silent: bool | frozenset[str] = frozenset()
    delay_s: float = 0.0
    answer_twice: bool = False
    sync_fails: frozenset[str] = frozenset()

    def is_silent(self, phone: str) -> bool:
        return self.silent if isinstance(self.silent, bool) else phone in self.silent


@dataclass(slots=True)
class CrmAgreement:
    """The CRM's copy of an agreement; `provisional` ones were signed at the province before the hub."""

    agreement_id: str
    phone: str
    bank_code: str
    user_type: UserType
    version: int = 1
    account_last4: str = ""
    recharge_threshold: int | None = None
    recharge_amount: int | None = None
    auto_pay: bool | None = None
    status: str = "ACTIVE"  # ACTIVE or CANCELLED
    provisional: bool = False
    signed_at: str = ""
    changed_at: str = ""  # last change, for the DAILY reconciliation file

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


def provisional_agreement(subscriber: Subscriber) -> CrmAgreement | None:
    """The province-level agreement a seeded subscriber already has, if any."""
    if subscriber.existing_agreement_id is None:
        return None
    return CrmAgreement(
        agreement_id=subscriber.existing_agreement_id,
        phone=subscriber.phone,
        bank_code="",
        user_type=subscriber.user_type,
        recharge_threshold=subscriber.recharge_threshold,
        recharge_amount=subscriber.recharge_amount,
        provisional=True,
    )


def verify_answer(verify_id: str, subscriber: Subscriber | None, existing: str | None) -> VerifyResponse:
    """The answer to `verify.request`, in DOMAIN.md's order (`existing`: the number's agreement id)."""
    refusal = _refusal(subscriber, existing)
    if refusal is not None:
        return VerifyResponse(
            verify_id=verify_id, result=Outcome.REJECTED, reason_code=refusal, existing_agreement_id=existing
        )
    assert subscriber is not None  # no refusal means the number is known
    prepaid = subscriber.user_type is UserType.PREPAID
    return VerifyResponse(
        verify_id=verify_id,
        result=Outcome.OK,
        user_type=subscriber.user_type,
        recharge_threshold=subscriber.recharge_threshold if prepaid else None,
        recharge_amount=subscriber.recharge_amount if prepaid else None,
        auto_pay_allowed=subscriber.auto_pay_allowed,
    )


def _refusal(subscriber: Subscriber | None, existing: str | None) -> ReasonCode | None:
    if subscriber is None:
        return ReasonCode.NOT_SUBSCRIBER
    if existing is not None:
        return ReasonCode.ALREADY_SIGNED
    if subscriber.status is not SubscriberStatus.NORMAL:
        return ReasonCode.NUMBER_INACTIVE
    if subscriber.blacklisted:
        return ReasonCode.BLACKLISTED
    if subscriber.exclusive_service:
        return ReasonCode.EXCLUSIVE_SERVICE
    return None
