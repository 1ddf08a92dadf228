"""Hypothesis strategies of bad (and some good) inbound messages, for the edge and broker fuzzers.

Each `FuzzInput` starts from a valid body of one inbound type of the catalogue and is spoilt in
the body (a field missing, of the wrong JSON type, huge, odd unicode, a recon.file scope, over the
size limit, nested deep, not an object, not JSON, not UTF-8) and/or in the envelope (content type,
`type` property, schema version, message_id, unknown or unauthorised sender, unknown type, the
hub's internal headers a party must not be believed in, a card number in the message_id, type or
routing key). `kind` names what was done. The generator records how it made the input (`made`)
and so knows what the contract says must follow: `expect`, built by bench/fuzz_expect.py, never
by asking the hub. The message_id is made from a mode and a number, so every input of a run has
its own and can be found again in the dead queue.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from bench.fuzz_expect import (
    CONTRACT_FIELDS,
    ID_FIELDS,
    NAME_FIELDS,
    NUMBER_FIELDS,
    REQUIRED,
    SCOPES,
    TEXT_FIELDS,
    TEXT_MAX,
    Expect,
    Made,
    id_ok,
    label,
    name_ok,
)
from contracts import catalogue
from contracts.routing import PartyKind
from hub.messaging.edge import Delivery

CARD, ID_NO = "6222020200112233445", "11010519491231002X"
BANKS, PROVINCES = ("ICBC", "CCB"), ("GD", "BJ")
MAX_BODY = 64 * 1024  # the AsyncAPI notes' "a refused body over 64 KB" (hub/messaging/refusal.py)
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
    # R2: no sign.request of the fuzzer names it, so every request's answer is due (bench/fuzz_judge.py)
    (PartyKind.BANK, "sign.failed"): {"request_id": "R2", "reason": "card declined"},
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


# A party's strings travel in AMQP short strings (at most 255 bytes): longer ones cannot be sent.
_SHORT = ODD_TEXT.filter(lambda t: len(t.encode()) <= 255)
_VALID_MIDS = ("valid", "card")  # "1-64 printable ASCII": the others are not


@dataclass(frozen=True)
class FuzzInput:
    routing_key: str
    body: bytes
    msg_type: str | None
    content_type: str | None
    made: Made
    headers: dict[str, Any] = field(default_factory=dict)
    mid_mode: str = "valid"  # valid, missing, empty, long, unicode, control, card
    kind: str = "valid"

    @property
    def expect(self) -> Expect:
        """What the contract says must follow, from how the input was made."""
        return label(self.made, self.mid_mode in _VALID_MIDS)

    def message_id(self, n: int) -> str | None:
        base = f"fz-{n}"
        return {"valid": base, "missing": None, "empty": "", "long": base + "x" * 70,
                "unicode": base + "-é", "control": base + "\x01", "card": f"{base}-{CARD}"}[self.mid_mode]  # fmt: skip

    def delivery(self, n: int) -> Delivery:
        return Delivery(self.routing_key, self.body, self.message_id(n), self.msg_type, self.content_type,
                        headers=dict(self.headers))  # fmt: skip


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ODD_TEXT,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(ODD_TEXT, c, max_size=3), max_leaves=8,
)  # fmt: skip  # JSON only: NaN and Infinity are not JSON (RFC 8259)
_EXTRA_NAMES = ODD_TEXT.filter(lambda k: k not in CONTRACT_FIELDS)
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_GOOD_NAMES = st.text(st.characters(categories=["L"]) | st.sampled_from(["·", " "]), min_size=1, max_size=64).map(
    lambda t: unicodedata.normalize("NFC", t)).filter(lambda t: len(t) <= 64)  # fmt: skip  # NFC may lengthen
_BAD_NAMES = st.sampled_from(["", "名" * 65]) | st.tuples(
    _GOOD_NAMES, st.sampled_from(["\x00", "\x1f", "\x7f", "\u202e", "\u200b", "\ufeff", "\ue000"])
).map("".join)
# Deep nesting in an unknown field: the contract fixes no depth. The hub reads 200 levels and refuses
# deeper bodies INVALID_MESSAGE (its JSON parser's bound; documented nowhere a party reads): the
# fuzzer stays clear of the bound on both sides.
_SHALLOW, _DEEP = st.integers(2, 150), st.integers(300, 20_000)


def _not_printable_ascii(text: str) -> bool:
    return any(not " " <= c <= "~" for c in text)


def _odd(name: str) -> st.SearchStrategy[tuple[str, bool]]:
    """An odd text for field `name`, and whether the contract takes it there."""
    if name in NAME_FIELDS:
        return _GOOD_NAMES.map(lambda t: (t, True)) | _BAD_NAMES.map(lambda t: (t, False))
    if name in ID_FIELDS:
        return (ODD_TEXT | st.text(_PRINTABLE, max_size=70)).map(lambda t: (t, id_ok(t)))
    if name in TEXT_FIELDS:
        return ODD_TEXT.map(lambda t: (t, len(t) <= TEXT_MAX))
    if name in NUMBER_FIELDS:  # a string is never a JSON number or boolean
        return ODD_TEXT.map(lambda t: (t, False))
    # An ASCII format or enumeration: a character outside printable ASCII cannot be in it.
    return ODD_TEXT.filter(_not_printable_ascii).map(lambda t: (t, False))


def _huge_ok(name: str, text: str) -> bool:
    # 65 digits or more: longer than every ASCII format (sha256, the longest, has 64) and every id.
    if name in TEXT_FIELDS:
        return len(text) <= TEXT_MAX
    return name in NAME_FIELDS and name_ok(text)


def _applies(how: str, entry: catalogue.Entry) -> bool:
    return how != "scope" or entry.type == "recon.file"


@st.composite
def _body(
    draw: st.DrawFn, entry: catalogue.Entry, hows: tuple[str, ...]
) -> tuple[bytes, str, dict[str, Any] | None]:
    """A body of `entry` made one way of `hows`, and the body as made when the contract takes it."""
    base = dict(VALID[(entry.kind, entry.type)])
    how = draw(st.sampled_from([h for h in hows if _applies(h, entry)] or ["valid"]))
    name = draw(st.sampled_from(sorted(base)))
    if how == "extra":
        base |= draw(st.dictionaries(_EXTRA_NAMES, _JSON_VALUES, min_size=1, max_size=4))
        return _dump(base), how, base  # "unknown fields are ignored"
    if how == "missing":
        del base[name]
        return _dump(base), how, None if name in REQUIRED[(entry.kind, entry.type)] else base
    if how == "wrong_type":  # no inbound field is an array or an object
        base[name] = draw(st.sampled_from([[1], {"a": 1}, [], {}]))
        return _dump(base), how, None
    if how in ("huge", "odd_unicode", "scope"):
        if how == "huge":
            value = "9" * draw(st.integers(65, 40_000))
            ok = _huge_ok(name, value)
        elif how == "scope":
            name, value = "scope", draw(st.sampled_from(["DAILY", "MONTHLY", "DEBITS", "CREDITS"]))
            ok = value in SCOPES[entry.kind]
        else:
            value, ok = draw(_odd(name))
        base[name] = value
        return _dump(base), how, base if ok else None
    if how == "oversize":  # AsyncAPI notes: "a refused body over 64 KB"
        return _dump(base | {"padding": "x" * (MAX_BODY + draw(st.integers(0, 5000)))}), how, None
    if how == "deep":  # copying one once exhausted the hub's stack (issue 14)
        depth = draw(_SHALLOW | _DEEP)
        nested = _dump(base)[:-1] + b', "nest": ' + b"[" * depth + b"]" * depth + b"}"
        return nested, how, base if depth <= 150 else None
    if how == "not_object":
        return _dump(draw(st.sampled_from([[base], 1, "text", None, True]))), how, None
    if how == "garbage":
        return draw(st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{"))), how, None
    if how == "bad_utf8":
        raw = _dump(base)
        cut = draw(st.integers(1, len(raw) - 2))
        return raw[:cut] + b"\xff\xfe" + raw[cut:], how, None
    return _dump(base), "valid", base


def _not_json_ct(text: str) -> bool:
    return text.split(";")[0].strip().lower() != "application/json"


BODY_KINDS = (
    "valid",
    "extra",
    "missing",
    "wrong_type",
    "huge",
    "odd_unicode",
    "scope",
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
    body, kind, made_body = draw(_body(entry, body_kinds))
    code = draw(st.sampled_from(CODES[entry.kind]))
    rk, ct = f"{entry.kind.value}.{code}.{entry.type}", "application/json"
    sender: str | None = f"{entry.kind.value}.{code}"
    msg_type: str | None = entry.type
    headers: dict[str, Any] = {"x-schema-version": 1}
    mid, type_refusal = "valid", None
    envelope = draw(st.sampled_from(envelopes))
    if envelope == "content_type":
        ct = draw(st.sampled_from(["text/plain", "application/xml"]) | _SHORT.filter(_not_json_ct))
    elif envelope == "type":
        others = sorted(catalogue.INBOUND_TYPES - {entry.type})
        msg_type = draw(st.none() | st.sampled_from(others) | _SHORT.filter(lambda t: t != entry.type))
    elif envelope == "schema":  # "x-schema-version: 1 (integer or string)"
        headers = {"x-schema-version": draw(st.sampled_from([2, 0, "2", "v1", True]))}
    elif envelope == "message_id":
        mid = draw(st.sampled_from(["missing", "empty", "long", "unicode", "control"]))
    elif envelope == "unknown_sender":  # no party of the registry, or no party name at all
        rk = draw(st.sampled_from([f"bank.XBANK.{entry.type}", f"crm.XX.{entry.type}", f"shop.GD.{entry.type}",
                                   entry.type, "", f"bank.icbc.{entry.type}"]))  # fmt: skip
        sender = None
    elif envelope == "other_kind":  # "sends a type not in its kind's catalogue": UNAUTHORIZED_SENDER
        own = {e.type for e in catalogue.INBOUND if e.kind is entry.kind}
        rk = f"{entry.kind.value}.{code}.{draw(st.sampled_from(sorted(catalogue.INBOUND_TYPES - own)))}"
        msg_type, type_refusal = rk.split(".", 2)[2], "UNAUTHORIZED_SENDER"
    elif envelope in ("unknown_type", "card_routing_key"):  # a type of no catalogue; a number as the type
        key_type = CARD if envelope == "card_routing_key" else draw(st.sampled_from(_NO_TYPES))
        rk, msg_type, type_refusal = f"{entry.kind.value}.{code}.{key_type}", key_type, "UNKNOWN_TYPE"
    elif envelope == "internal_headers":  # data, never authority: the message is what its body makes it
        headers |= FORGED
    elif envelope == "card_message_id":  # a valid message_id that happens to hold a card number
        mid = "card"
    elif envelope == "card_type":
        msg_type = draw(st.sampled_from([CARD, f"sign.{ID_NO}"]))
    envelope_ok = envelope not in _ENVELOPE_DEFECTS
    if envelope != "ok":
        kind = f"{kind}+{envelope}"
    made = Made(entry.kind, entry.type, sender, type_refusal, envelope_ok, made_body)
    return FuzzInput(rk, body, msg_type, ct, made, headers, mid, kind)


_NO_TYPES = ("foo.bar", "sign", "sign.requestx", "Sign.Request")
# Content type, `type` property and schema version other than the contract's ("Envelope")
_ENVELOPE_DEFECTS = frozenset({"content_type", "type", "schema", "card_type"})
