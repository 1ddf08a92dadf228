"""Test data: valid bodies for the bank-channel flow, with fresh identifiers each call."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

_serial = itertools.count(uuid.uuid4().int % 1_000_000)
CARD = "6222020200112233445"
ID_NO = "11010519491231002X"


def fresh_phone(prefix: str = "1380") -> str:
    """A number under `prefix` not used before in this test run."""
    width = 11 - len(prefix)
    return prefix + str(next(_serial)).zfill(width)[-width:]


def sign_request(phone: str, **over: Any) -> dict[str, Any]:
    body = {
        "request_id": f"R{uuid.uuid4().hex[:12]}", "phone": phone, "account_no": CARD,
        "account_type": "DEBIT", "holder_name": "张三", "id_type": "ID_CARD", "id_no": ID_NO,
        "channel": "ONLINE", "requested_at": "2026-11-26T10:00:00+08:00",
    }  # fmt: skip
    body.update(over)
    return body


def verify_ok_prepaid(verify_id: str, threshold: int = 1000, amount: int = 5000) -> dict[str, Any]:
    return {"verify_id": verify_id, "result": "OK", "user_type": "PREPAID", "recharge_threshold": threshold,
            "recharge_amount": amount, "auto_pay_allowed": False}  # fmt: skip


def confirmed(request: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = {
        "request_id": request["request_id"], "bank_agreement_no": f"BA{uuid.uuid4().hex[:10]}",
        "phone": request["phone"], "account_no": request["account_no"],
        "account_type": request["account_type"], "signed_at": "2026-11-26T10:01:00+08:00",
    }  # fmt: skip
    body.update(over)
    return body
