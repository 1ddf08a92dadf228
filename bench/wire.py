"""What the scripted parties and the raw relay put on the wire: the flow-2 messages of
docs/CONTRACT.md, written from the contract alone (no hub imports), plus the flow numbering.

Flow `i` has its own phone number and request_id, so every message can be traced back to its flow:
even flows are Guangdong numbers (138...), odd ones Beijing (139...); banks take turns in pairs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import aio_pika

BANKS = ("ICBC", "CCB")
PROVINCES = ("GD", "BJ")
SEGMENTS_CSV = "prefix,province\n138,GD\n139,BJ\n"
_PROVINCE_OF_PREFIX = {"138": "GD", "139": "BJ"}
CARD = "6222020200112233445"
ID_NO = "11010519491231002X"
SCHEMA = {"x-schema-version": 1}

# Messages on the broker for one flow, in order: what a hub flow costs the broker.
FLOW_MESSAGES = ("sign.request", "verify.request", "verify.response", "sign.response",
                 "sign.confirmed", "sign.result", "sign.notify")  # fmt: skip
SYNCED = "sign.synced"


def bank_of(i: int) -> str:
    return BANKS[(i // 2) % len(BANKS)]


def phone_of(i: int) -> str:
    return ("138", "139")[i % 2] + f"{i:08d}"


def flow_of_phone(phone: str) -> int:
    return int(phone[3:])


def province_of(phone: str) -> str:
    return _PROVINCE_OF_PREFIX[phone[:3]]


def request_id_of(run: str, i: int) -> str:
    return f"R{run}-{i}"


def flow_of_request_id(request_id: str) -> int:
    return int(request_id.rsplit("-", 1)[1])


def sign_request(run: str, i: int) -> dict[str, Any]:
    return {
        "request_id": request_id_of(run, i), "phone": phone_of(i), "account_no": CARD,
        "account_type": "DEBIT", "holder_name": "张三", "id_type": "ID_CARD", "id_no": ID_NO,
        "channel": "ONLINE", "requested_at": "2026-11-26T10:00:00+08:00",
    }  # fmt: skip


def verify_ok(verify_id: str) -> dict[str, Any]:
    return {"verify_id": verify_id, "result": "OK", "user_type": "PREPAID", "recharge_threshold": 1000,
            "recharge_amount": 5000, "auto_pay_allowed": False}  # fmt: skip


def sign_confirmed(request_id: str, phone: str) -> dict[str, Any]:
    return {
        "request_id": request_id, "bank_agreement_no": f"BA{request_id}", "phone": phone,
        "account_no": CARD, "account_type": "DEBIT", "signed_at": "2026-11-26T10:01:00+08:00",
    }  # fmt: skip


def sign_synced(agreement_id: str) -> dict[str, Any]:
    return {"agreement_id": agreement_id, "result": "OK"}


def message(msg_type: str, body: dict[str, Any], correlation_id: str | None = None) -> aio_pika.Message:
    """A persistent JSON message as a party (or the raw relay) sends it."""
    return aio_pika.Message(
        json.dumps(body, ensure_ascii=False).encode(), message_id=uuid.uuid4().hex, type=msg_type,
        correlation_id=correlation_id, content_type="application/json", headers=SCHEMA,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )  # fmt: skip
