"""Hypothesis strategies of bad (and some good) inbound messages, for the edge and broker fuzzers.

Each `FuzzInput` starts from a valid body of one inbound type of the catalogue and is spoilt in
the body (a field missing, of the wrong JSON type, huge, odd unicode, over the size limit, nested
thousands of levels deep, not an object, not JSON, not UTF-8) and/or in the envelope (content
type, `type` property, schema version, message_id, unknown or unauthorised sender, unknown type,
the hub's internal headers a party must not be believed in, a card number in the message_id,
type or routing key). `kind` names what was done
and `expect` what the contract says must follow: "accept", a refusal reason, or "either" (a huge
or odd-unicode value may still be valid). The message_id is made from a mode and a number, so
every input of a run has its own and can be found again in the dead queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from contracts import catalogue
from contracts.routing import PartyKind
from hub.messaging.edge import Delivery

CARD, ID_NO = "6222020200112233445", "11010519491231002X"
BANKS, PROVINCES = ("ICBC", "CCB"), ("GD", "BJ")
MAX_BODY = 64 * 1024  # hub/messaging/intake.py MAX_BODY
_TS = "2026-11-26T10:00:00+08:00"
_RECON = {"file_name": "F1.txt", "business_date": "2026-11-25", "scope": "DAILY", "record_count": 0,
          "sha256": "0" * 64}  # fmt: skip
VALID: dict[tuple[PartyKind, str], dict[str, Any]] = {
    (PartyKind.BANK, "sign.request"): {
        "request_id": "R1", "phone": "13800138000", "account_no": CARD, "account_type": "DEBIT",
        "holder_name": "张三", "id_type": "ID_CARD", "id_no": ID_NO, "channel": "ONLINE", "requested_at": _TS},
    (PartyKind.BANK, "sign.confirmed"): {
        "request_id": "R1", "bank_agreement_no": "BA1", "phone": "13800138000", "account_no": CARD,
        "account_type": "DEBIT", "signed_at": _TS},
    (PartyKind.BANK, "sign.failed"): {"request_id": "R1", "reason": "card declined"},
    (PartyKind.BANK, "unsign.request"): {"bank_agreement_no": "BA1", "phone": "13800138000"},
    (PartyKind.BANK, "modify.request"): {"bank_agreement_no": "BA1", "phone": "13800138000",
                                         "recharge_threshold": 1000},
    (PartyKind.BANK, "recon.file"): _RECON,
    (PartyKind.BANK, "debit.result"): {
        "debit_id": "DB1", "result": "SUCCEEDED", "amount": 5000, "bank_txn_no": "T1", "debited_at": _TS},
    (PartyKind.BANK, "reverse.result"): {"reversal_id": "RV1", "debit_id": "DB1", "result": "REVERSED"},
    (PartyKind.CRM, "verify.response"): {
        "verify_id": "V1", "result": "OK", "user_type": "PREPAID", "recharge_threshold": 1000,
        "recharge_amount": 5000, "auto_pay_allowed": False},
    (PartyKind.CRM, "sign.synced"): {"agreement_id": "A1", "result": "OK"},
    (PartyKind.CRM, "unsign.request"): {"phone": "13800138000"},
    (PartyKind.CRM, "modify.request"): {"phone": "13800138000", "recharge_amount": 5000},
    (PartyKind.CRM, "boss.sync"): {"agreement_id": "A1", "phone": "13800138000", "action": "ADD"},
    (PartyKind.CRM, "recon.file"): _RECON,
    (PartyKind.CRM, "errors.applied"): {"file_name": "E1.txt", "applied": 0, "failed": 0},
    (PartyKind.BOSS, "agreement.synced"): {"agreement_id": "A1", "result": "OK"},
    (PartyKind.BOSS, "recharge.request"): {
        "recharge_id": "RC1", "phone": "13800138000", "trigger": "LOW_BALANCE", "balance": 500,
        "requested_at": _TS},
    (PartyKind.BOSS, "credit.result"): {"recharge_id": "RC1", "result": "OK", "balance_after": 5500},
    (PartyKind.BOSS, "recon.file"): _RECON | {"scope": "CREDITS"},
}  # fmt: skip
CODES = {PartyKind.BANK: BANKS, PartyKind.CRM: PROVINCES, PartyKind.BOSS: PROVINCES}
ODD_TEXT = st.text(
    st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Z", "C"]), min_size=1, max_size=80
) | st.sampled_from(["\u202eRTL", "\u200b", "\x00", "e\u0301", "😀" * 40, "Ａ１", "١٢٣", "\ufeff"])


@dataclass(frozen=True)
class FuzzInput:
    routing_key: str
    body: bytes
    msg_type: str | None
    content_type: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    mid_mode: str = "valid"  # valid, missing, empty, long, unicode, control, card
    kind: str = "valid"
    expect: str = "accept"  # accept, either, or a QueueReason value

    def message_id(self, n: int) -> str | None:
        base = f"fz-{n}"
        return {"valid": base, "missing": None, "empty": "", "long": base + "x" * 70,
                "unicode": base + "-é", "control": base + "\x01", "card": f"{base}-{CARD}"}[self.mid_mode]  # fmt: skip

    def delivery(self, n: int) -> Delivery:
        return Delivery(self.routing_key, self.body, self.message_id(n), self.msg_type, self.content_type,
                        headers=dict(self.headers))  # fmt: skip


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def _body(draw: st.DrawFn, entry: catalogue.Entry, hows: tuple[str, ...]) -> tuple[bytes, str, str]:
    base = dict(VALID[(entry.kind, entry.type)])
    fields = sorted(base)
    required = [n for n, f in entry.model.model_fields.items() if f.is_required()]
    how = draw(st.sampled_from(hows))
    if how == "extra":
        json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                                   | ODD_TEXT, lambda c: st.lists(c, max_size=3) | st.dictionaries(ODD_TEXT, c, max_size=3),
                                   max_leaves=8)  # fmt: skip
        names = ODD_TEXT.filter(lambda k: k not in entry.model.model_fields)
        return _dump(base | draw(st.dictionaries(names, json_values, min_size=1, max_size=4))), how, "accept"
    if how == "missing" and required:
        del base[draw(st.sampled_from(required))]
        return _dump(base), how, "INVALID_MESSAGE"
    if how == "wrong_type":
        base[draw(st.sampled_from(fields))] = draw(st.sampled_from([[1], {"a": 1}, [], {}]))
        return _dump(base), how, "INVALID_MESSAGE"
    if how in ("huge", "odd_unicode"):
        text = "9" * draw(st.integers(65, 40_000)) if how == "huge" else draw(ODD_TEXT)
        base[draw(st.sampled_from(fields))] = text
        return _dump(base), how, "either"
    if how == "oversize":
        return (
            _dump(base | {"padding": "x" * (MAX_BODY + draw(st.integers(0, 5000)))}),
            how,
            "INVALID_MESSAGE",
        )
    if how == "deep":  # past the parser's bound: copying it once exhausted the stack (issue 14)
        depth = draw(st.integers(300, 20_000))
        return _dump(base)[:-1] + b', "nest": ' + b"[" * depth + b"]" * depth + b"}", how, "INVALID_MESSAGE"
    if how == "not_object":
        return _dump(draw(st.sampled_from([[base], 1, "text", None, True]))), how, "INVALID_MESSAGE"
    if how == "garbage":
        return (
            draw(st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{"))),
            how,
            "INVALID_MESSAGE",
        )
    if how == "bad_utf8":
        raw = _dump(base)
        cut = draw(st.integers(1, len(raw) - 2))
        return raw[:cut] + b"\xff\xfe" + raw[cut:], how, "INVALID_MESSAGE"
    return _dump(base), "valid", "accept"


def _not_json_ct(text: str) -> bool:
    return text.split(";")[0].strip().lower() != "application/json"


BODY_KINDS = (
    "valid",
    "extra",
    "missing",
    "wrong_type",
    "huge",
    "odd_unicode",
    "oversize",
    "deep",
    "not_object",
    "garbage",
    "bad_utf8",
)
ENVELOPES = ("ok",) * 6 + (
    "content_type",
    "type",
    "schema",
    "message_id",
    "unknown_sender",
    "other_kind",
    "unknown_type",
    "internal_headers",
    "card_message_id",
    "card_type",
    "card_routing_key",
)
# What the hub's own retry of another party's message carries: a party's copy is never believed.
FORGED = {"x-death": [{"count": 1, "reason": "expired", "queue": "signhub.hub.retry.1", "exchange": "",
                       "routing-keys": ["signhub.hub.inbound"]}],
          "x-signhub-routing-key": "crm.GD.unsign.request", "x-signhub-user-id": "signhub.crm.GD",
          "x-signhub-attempt": 1, "x-signhub-replay": "op", "x-signhub-seal": "0" * 64}  # fmt: skip


@st.composite
def fuzz_input(
    draw: st.DrawFn, body_kinds: tuple[str, ...] = BODY_KINDS, envelopes: tuple[str, ...] = ENVELOPES
) -> FuzzInput:
    """One inbound message, spoilt in the body (one of `body_kinds`) and/or the envelope."""
    entry = draw(st.sampled_from(catalogue.INBOUND))
    body, kind, expect = draw(_body(entry, body_kinds))
    code = draw(st.sampled_from(CODES[entry.kind]))
    rk, ct = f"{entry.kind.value}.{code}.{entry.type}", "application/json"
    msg_type: str | None = entry.type
    headers: dict[str, Any] = {"x-schema-version": 1}
    mid = "valid"
    envelope = draw(st.sampled_from(envelopes))
    if envelope == "content_type":
        ct = draw(st.sampled_from(["text/plain", "application/xml"]) | ODD_TEXT.filter(_not_json_ct))
    elif envelope == "type":
        others = sorted(catalogue.INBOUND_TYPES - {entry.type})
        msg_type = draw(st.none() | st.sampled_from(others) | ODD_TEXT.filter(lambda t: t != entry.type))
    elif envelope == "schema":
        headers = {"x-schema-version": draw(st.sampled_from([2, 0, "2", "v1", True]))}
    elif envelope == "message_id":
        mid = draw(st.sampled_from(["missing", "empty", "long", "unicode", "control"]))
    elif envelope == "unknown_sender":
        rk = draw(st.sampled_from([f"bank.XBANK.{entry.type}", f"crm.XX.{entry.type}", f"shop.GD.{entry.type}",
                                   entry.type, "", f"bank.icbc.{entry.type}"]))  # fmt: skip
    elif envelope == "other_kind":
        own = {e.type for e in catalogue.INBOUND if e.kind is entry.kind}
        others = sorted(catalogue.INBOUND_TYPES - own)
        rk = f"{entry.kind.value}.{code}.{draw(st.sampled_from(others))}"
        msg_type = rk.split(".", 2)[2]
    elif envelope == "unknown_type":
        rk = f"{entry.kind.value}.{code}.{draw(st.sampled_from(['foo.bar', 'sign', 'sign.requestx', 'Sign.Request']))}"
        msg_type = rk.split(".", 2)[2]
    elif envelope == "internal_headers":
        headers |= FORGED
    elif envelope == "card_message_id":
        mid = "card"
    elif envelope == "card_type":
        msg_type = draw(st.sampled_from([CARD, f"sign.{ID_NO}"]))
    elif envelope == "card_routing_key":
        rk = f"{entry.kind.value}.{code}.{CARD}"
        msg_type = CARD
    if envelope in ("internal_headers", "card_message_id"):  # the message is what its body makes it
        kind = f"{kind}+{envelope}"
    elif envelope != "ok":
        kind, expect = f"{kind}+{envelope}", _envelope_reason(envelope)
    return FuzzInput(rk, body, msg_type, ct, headers, mid, kind, expect)


def _envelope_reason(envelope: str) -> str:
    # The edge checks sender, then type, then envelope and body together: the first failure names it.
    return {"unknown_sender": "UNKNOWN_SENDER", "other_kind": "UNAUTHORIZED_SENDER", "unknown_type": "UNKNOWN_TYPE",
            "card_routing_key": "UNKNOWN_TYPE"}.get(envelope, "INVALID_MESSAGE")  # fmt: skip
