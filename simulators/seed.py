"""Deterministic generated data for the simulators: bank accounts and provincial subscribers.

`build_world(seed, ...)` makes the same world for the same arguments. Every province gets, on
purpose, one subscriber for each way a CRM refuses a number (the first five of its list), so
scenarios and tests can pick a refusal by its reason code; the rest may sign.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from contracts.common import AccountType, ReasonCode, UserType
from contracts.masking import mask_card, mask_id
from simulators import names
from simulators.checks import id_complete, luhn_complete

# The refusals a CRM gives (DOMAIN.md flow 2 step 4), in the order each province's list starts with.
REFUSAL_KINDS: tuple[ReasonCode, ...] = (
    ReasonCode.NUMBER_INACTIVE,
    ReasonCode.BLACKLISTED,
    ReasonCode.EXCLUSIVE_SERVICE,
    ReasonCode.ALREADY_SIGNED,
    ReasonCode.NOT_SUBSCRIBER,
)
# Province rule for postpaid auto-pay: these provinces keep collection (托收) users off it.
NO_AUTO_PAY_PROVINCES = frozenset({"XZ", "QH", "NX"})
# (threshold, amount) in fen that prepaid subscribers choose from.
PREPAID_TERMS: tuple[tuple[int, int], ...] = ((1000, 5000), (2000, 5000), (3000, 10000), (5000, 10000))
_PHONE_ATTEMPTS = 500
# The operator's own number blocks (China Mobile); other carriers' blocks give NOT_SUBSCRIBER numbers.
OPERATOR_BLOCKS = frozenset(
    ("134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159",
     "172", "178", "182", "183", "184", "187", "188", "195", "197", "198")
)  # fmt: skip


class SegmentLookup(Protocol):
    """What the seed needs of the hub's segment table (`hub.segments.SegmentTable`)."""

    def prefixes_of(self, province: str) -> list[str]: ...

    def province_of(self, phone: str) -> str | None: ...


class AccountStatus(StrEnum):
    NORMAL = "NORMAL"
    FROZEN = "FROZEN"


class SubscriberStatus(StrEnum):
    NORMAL = "NORMAL"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Account:
    """A bank account; `repr` masks the card and ID numbers so they never reach a log."""

    bank: str
    account_no: str = field(repr=False)
    account_type: AccountType
    holder_name: str
    id_no: str = field(repr=False)
    status: AccountStatus
    online_banking: bool

    @property
    def masked_account_no(self) -> str:
        return mask_card(self.account_no)

    @property
    def masked_id_no(self) -> str:
        return mask_id(self.id_no)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A mobile number as its home-province CRM knows it (`in_register` False: it does not)."""

    phone: str
    province: str
    status: SubscriberStatus
    user_type: UserType
    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay_allowed: bool
    blacklisted: bool = False
    exclusive_service: bool = False
    existing_agreement_id: str | None = None
    in_register: bool = True

    @property
    def expected_refusal(self) -> ReasonCode | None:
        """The CRM's answer to `verify.request` for this number, in DOMAIN.md's order; None: OK."""
        if not self.in_register:
            return ReasonCode.NOT_SUBSCRIBER
        if self.existing_agreement_id is not None:
            return ReasonCode.ALREADY_SIGNED
        if self.status is not SubscriberStatus.NORMAL:
            return ReasonCode.NUMBER_INACTIVE
        if self.blacklisted:
            return ReasonCode.BLACKLISTED
        if self.exclusive_service:
            return ReasonCode.EXCLUSIVE_SERVICE
        return None


@dataclass(frozen=True, slots=True)
class World:
    """Accounts by bank code and subscribers by province code."""

    seed: int
    accounts: dict[str, list[Account]]
    subscribers: dict[str, list[Subscriber]]

    def signable(self, province: str) -> list[Subscriber]:
        return [s for s in self.subscribers[province] if s.expected_refusal is None]

    def refused(self, reason: ReasonCode) -> list[Subscriber]:
        return [s for subs in self.subscribers.values() for s in subs if s.expected_refusal is reason]

    def usable_accounts(self, bank: str) -> list[Account]:
        """Accounts the bank's own checks let through, on any channel."""
        return [a for a in self.accounts[bank] if a.status is AccountStatus.NORMAL and a.online_banking]

    def register(self, province: str) -> list[Subscriber]:
        """The numbers the province's CRM knows."""
        return [s for s in self.subscribers[province] if s.in_register]


def default_segments() -> SegmentLookup:
    """The segment table the hub ships."""
    from hub.segments import SegmentTable  # with hub.liveness, the hub modules outside parties may use

    return SegmentTable.load()


def build_world(
    seed: int,
    banks: Sequence[str],
    provinces: Sequence[str],
    subscribers_per_province: int,
    *,
    accounts_per_bank: int | None = None,
    segments: SegmentLookup | None = None,
) -> World:
    """The same world for the same arguments (and segment table)."""
    if subscribers_per_province <= len(REFUSAL_KINDS):
        raise ValueError(
            f"subscribers_per_province must be more than {len(REFUSAL_KINDS)} "
            f"(one per refusal kind, and some that may sign), got {subscribers_per_province}"
        )
    rng = random.Random(seed)
    table = segments if segments is not None else default_segments()
    if accounts_per_bank is None:
        accounts_per_bank = max(8, -(-len(provinces) * subscribers_per_province // max(len(banks), 1)) + 4)
    accounts = {bank: [_account(rng, bank, i) for i in range(accounts_per_bank)] for bank in banks}
    used: set[str] = set()
    subscribers = {prov: _province(rng, table, prov, subscribers_per_province, used) for prov in provinces}
    return World(seed=seed, accounts=accounts, subscribers=subscribers)


def _account(rng: random.Random, bank: str, index: int) -> Account:
    account_type = AccountType.CREDIT if rng.random() < 0.3 else AccountType.DEBIT
    bin_, length = names.card_bin(bank, account_type)
    body = bin_ + "".join(rng.choice("0123456789") for _ in range(length - len(bin_) - 1))
    minority = rng.random() < 0.1
    # Index 0 is frozen and index 1 has no online banking: each bank shows both local refusals.
    return Account(
        bank=bank,
        account_no=luhn_complete(body),
        account_type=account_type,
        holder_name=names.minority_name(rng) if minority else names.han_name(rng),
        id_no=_id_no(rng, minority),
        status=AccountStatus.FROZEN if index == 0 else AccountStatus.NORMAL,
        online_banking=index != 1,
    )


def _id_no(rng: random.Random, minority: bool) -> str:
    area = rng.choice(names.MINORITY_AREAS if minority else names.AREAS)
    birth = f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return id_complete(f"{area}{birth}{rng.randint(0, 999):03d}")


def _province(
    rng: random.Random, table: SegmentLookup, province: str, count: int, used: set[str]
) -> list[Subscriber]:
    prefixes = sorted(p for p in table.prefixes_of(province) if p[:1] == "1" and p[1:2] in "3456789")
    if not prefixes:
        raise ValueError(f"the segment table has no mobile prefix for province {province!r}")
    own = [p for p in prefixes if p[:3] in OPERATOR_BLOCKS] or prefixes
    others = [p for p in prefixes if p[:3] not in OPERATOR_BLOCKS] or prefixes
    subscribers = []
    for index in range(count):
        stranger = index < len(REFUSAL_KINDS) and REFUSAL_KINDS[index] is ReasonCode.NOT_SUBSCRIBER
        phone = _phone(rng, table, others if stranger else own, province, used)
        subscribers.append(_subscriber(rng, province, index, phone))
    return subscribers


def _subscriber(rng: random.Random, province: str, index: int, phone: str) -> Subscriber:
    kind = REFUSAL_KINDS[index] if index < len(REFUSAL_KINDS) else None
    prepaid = rng.random() < 0.7
    threshold, amount = rng.choice(PREPAID_TERMS) if prepaid else (None, None)
    inactive = rng.choice((SubscriberStatus.SUSPENDED, SubscriberStatus.CLOSED))
    return Subscriber(
        phone=phone,
        province=province,
        status=inactive if kind is ReasonCode.NUMBER_INACTIVE else SubscriberStatus.NORMAL,
        user_type=UserType.PREPAID if prepaid else UserType.POSTPAID,
        recharge_threshold=threshold,
        recharge_amount=amount,
        auto_pay_allowed=not prepaid and province not in NO_AUTO_PAY_PROVINCES,
        blacklisted=kind is ReasonCode.BLACKLISTED,
        exclusive_service=kind is ReasonCode.EXCLUSIVE_SERVICE,
        existing_agreement_id=f"CRM{province}{phone}" if kind is ReasonCode.ALREADY_SIGNED else None,
        in_register=kind is not ReasonCode.NOT_SUBSCRIBER,
    )


def _phone(
    rng: random.Random, table: SegmentLookup, prefixes: list[str], province: str, used: set[str]
) -> str:
    # A longer prefix of another province may sit inside a short one: check the whole number.
    for _ in range(_PHONE_ATTEMPTS):
        prefix = rng.choice(prefixes)
        phone = prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))
        if phone not in used and table.province_of(phone) == province:
            used.add(phone)
            return phone
    raise ValueError(f"no free number of province {province!r} found in {_PHONE_ATTEMPTS} attempts")
