"""Hub records and typed messages for unit and store tests, built without broker or disk.

`ids()` is a counter-based id source (prefix + 1, 2, ...), so tests can name the ids a step makes.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from contracts.common import AccountType, Channel, Message, UserType
from hub.agreements import Account, Agreement, AgreementStatus, FlowState, SigningFlow, Terms
from hub.flows.common import NewId, Timing

M = TypeVar("M", bound=Message)

NOW = datetime(2026, 11, 26, 2, 0, 0, tzinfo=UTC)
TIMING = Timing(crm_timeout=timedelta(seconds=30), crm_asks=3, approval_window=timedelta(hours=24))
CARD = "6222020200112233445"
ID_NO = "11010519491231002X"


def ids() -> NewId:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}{next(counter)}"


def parse(model: type[M], body: dict[str, Any]) -> M:
    """A wire body as the edge would hand it to a flow: validated from JSON."""
    return model.model_validate_json(json.dumps(body, ensure_ascii=False))


def account(fingerprint: str = "fp-card-1", last4: str = "3445", encrypted: str = "enc-card-1") -> Account:
    return Account(fingerprint, last4, encrypted, AccountType.DEBIT)


PREPAID = Terms(UserType.PREPAID, recharge_threshold=1000, recharge_amount=5000, auto_pay_allowed=False)
POSTPAID = Terms(UserType.POSTPAID, recharge_threshold=None, recharge_amount=None, auto_pay_allowed=True)


def signing_flow(state: FlowState = FlowState.VERIFYING, **over: Any) -> SigningFlow:
    """A flow of bank.ICBC for 13800138000 (home crm.GD); VERIFYING after one ask unless told."""
    flow = SigningFlow(
        bank="ICBC", request_id="R1", phone="13800138000", province="GD", account=account(),
        channel=Channel.ONLINE, request_message_id="m-request", request_fingerprint="fp-request",
        state=state, created_at=NOW - timedelta(minutes=1), verify_id="V1", asks=1,
        deadline=NOW + TIMING.crm_timeout if state is FlowState.VERIFYING else None,
        id_encrypted="enc-id-1",
    )  # fmt: skip
    if state is FlowState.APPROVED:
        flow = replace(flow, terms=PREPAID, approved_at=NOW - timedelta(minutes=5))
    return replace(flow, **over)


def agreement(
    agreement_id: str = "A1", phone: str = "13800138000", status: AgreementStatus = AgreementStatus.ACTIVE,
    **over: Any,
) -> Agreement:  # fmt: skip
    made = Agreement(
        agreement_id=agreement_id, version=1, status=status, phone=phone, province="GD", bank="ICBC",
        bank_agreement_no=f"BA-{agreement_id}", account=account(), user_type=UserType.PREPAID,
        recharge_threshold=1000, recharge_amount=5000, auto_pay=False, channel=Channel.ONLINE,
        signed_at=NOW - timedelta(minutes=1), updated_at=NOW, flow_key="ICBC|R1",
    )  # fmt: skip
    return replace(made, **over)
