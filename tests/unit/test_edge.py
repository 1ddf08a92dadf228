"""The hub's edge (hub/messaging/edge.py) and the masking of personal numbers in copies.

`classify` decides once whether a raw delivery is accepted (typed, valid) or refused and why;
copies for the manual and dead queues never carry a full card or ID number (CONTRACT.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from contracts.bank import SignRequest
from contracts.common import QueueReason
from contracts.masking import mask_body, mask_card, mask_id
from contracts.routing import Party, PartyKind
from hub.messaging.copies import masked_body
from hub.messaging.edge import Accepted, Delivery, Rejected, classify
from hub.parties import Registry
from hub.protection import mask_digits_in_text
from tests.support.data import CARD, ID_NO, sign_request

REGISTRY = Registry.of(["ICBC", "CCB"], ["GD", "BJ"])
ICBC = Party(PartyKind.BANK, "ICBC")
MAX_BODY = 64 * 1024


def _delivery(body: dict[str, Any] | bytes | None = None, **over: Any) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body or sign_request("13800138000")).encode()
    d = Delivery(routing_key="bank.ICBC.sign.request", body=raw, message_id="m-1", msg_type="sign.request",
                 content_type="application/json", headers={"x-schema-version": 1})  # fmt: skip
    return replace(d, **over)


def _classify(d: Delivery, *, require_user_id: bool = False, max_body: int = MAX_BODY) -> Accepted | Rejected:
    return classify(d, REGISTRY, require_user_id=require_user_id, max_body=max_body)


def _refused(d: Delivery, **kwargs: Any) -> Rejected:
    got = _classify(d, **kwargs)
    assert isinstance(got, Rejected), f"expected a refusal, got {got}"
    return got


# --- accepted ------------------------------------------------------------------------------


def test_a_valid_sign_request_is_accepted_typed_with_its_sender_and_message_id() -> None:
    got = _classify(_delivery())

    assert isinstance(got, Accepted)
    assert (got.sender, got.msg_type, got.message_id) == (ICBC, "sign.request", "m-1")
    assert isinstance(got.message, SignRequest) and got.message.phone == "13800138000"


def test_a_missing_content_type_and_a_missing_schema_version_header_are_accepted() -> None:
    got = _classify(_delivery(content_type=None, headers={}))

    assert isinstance(got, Accepted)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_or_other_case_is_accepted(content_type: str) -> None:
    assert isinstance(_classify(_delivery(content_type=content_type)), Accepted)


@pytest.mark.parametrize("version", [1, "1"])
def test_schema_version_1_as_integer_or_string_is_accepted(version: object) -> None:
    assert isinstance(_classify(_delivery(headers={"x-schema-version": version})), Accepted)


def test_unknown_extra_fields_in_the_body_are_ignored() -> None:
    body = sign_request("13800138000", loyalty_tier="GOLD", nested={"anything": [1, 2]})

    got = _classify(_delivery(body))

    assert isinstance(got, Accepted)
    assert "loyalty_tier" not in got.message.model_dump()


# --- who sent it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "routing_key",
    [
        "nobody.X.whatever",
        "bank.HSBC.sign.request",
        "crm.ZJ.verify.response",
        "bank",
        "",
        "bank.icbc.sign.request",
    ],
)
def test_a_sender_outside_the_registry_is_refused_unknown_sender_with_nobody_to_answer(
    routing_key: str,
) -> None:
    got = _refused(_delivery(routing_key=routing_key))

    assert got.reason is QueueReason.UNKNOWN_SENDER
    assert got.sender is None
    assert got.errors, "the refusal must say why"


@pytest.mark.parametrize("routing_key", ["bank.ICBC", "bank.ICBC.Sign_Request", "bank.ICBC.sign."])
def test_a_registered_sender_with_a_malformed_routing_key_is_refused_unknown_type_and_told(
    routing_key: str,
) -> None:
    got = _refused(_delivery(routing_key=routing_key))

    assert got.reason is QueueReason.UNKNOWN_TYPE
    assert got.sender == ICBC
    assert routing_key in got.errors[0]


@pytest.mark.parametrize(
    ("sender", "msg_type"),
    [("bank.ICBC", "verify.response"), ("crm.GD", "sign.request"), ("boss.GD", "boss.sync")],
)
def test_a_type_of_another_party_kind_is_refused_unauthorized_sender(sender: str, msg_type: str) -> None:
    got = _refused(_delivery(routing_key=f"{sender}.{msg_type}", msg_type=msg_type))

    assert got.reason is QueueReason.UNAUTHORIZED_SENDER
    assert str(got.sender) == sender and got.msg_type == msg_type


def test_a_type_in_no_catalogue_is_refused_unknown_type() -> None:
    got = _refused(_delivery(routing_key="bank.ICBC.sign.cancel", msg_type="sign.cancel"))

    assert got.reason is QueueReason.UNKNOWN_TYPE
    assert got.sender == ICBC and got.msg_type == "sign.cancel"


def test_with_user_ids_required_a_user_id_that_is_not_the_party_is_refused_unauthorized_sender() -> None:
    got = _refused(_delivery(user_id="bank.CCB"), require_user_id=True)

    assert got.reason is QueueReason.UNAUTHORIZED_SENDER
    assert got.sender == ICBC and "bank.CCB" in got.errors[0]


def test_with_user_ids_required_a_missing_user_id_is_refused_and_the_right_one_accepted() -> None:
    assert _refused(_delivery(user_id=None), require_user_id=True).reason is QueueReason.UNAUTHORIZED_SENDER
    assert isinstance(_classify(_delivery(user_id="bank.ICBC"), require_user_id=True), Accepted)


def test_without_user_ids_required_any_user_id_is_accepted() -> None:
    assert isinstance(_classify(_delivery(user_id="guest")), Accepted)


def test_an_operator_replay_keeps_the_original_sender_and_passes_the_user_id_check() -> None:
    assert isinstance(_classify(_delivery(user_id="hub", replay_by="op"), require_user_id=True), Accepted)


# --- the envelope and the body -------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "names"),
    [
        ({"message_id": None}, "message_id"),
        ({"message_id": ""}, "message_id"),
        ({"message_id": "x" * 65}, "message_id"),
        ({"message_id": "id\twith-tab"}, "message_id"),
        ({"msg_type": "sign.confirmed"}, "type"),
        ({"msg_type": None}, "type"),
        ({"content_type": "text/plain"}, "content_type"),
        ({"headers": {"x-schema-version": 2}}, "x-schema-version"),
        ({"headers": {"x-schema-version": "2"}}, "x-schema-version"),
    ],
)
def test_an_envelope_that_breaks_the_contract_is_refused_invalid_message_naming_the_property(
    over: dict[str, Any], names: str
) -> None:
    got = _refused(_delivery(**over))

    assert got.reason is QueueReason.INVALID_MESSAGE
    assert got.sender == ICBC and got.msg_type == "sign.request"
    assert any(e.startswith(names) for e in got.errors), got.errors


def test_every_envelope_problem_is_listed_at_once() -> None:
    got = _refused(_delivery(message_id=None, content_type="text/xml", headers={"x-schema-version": 9}))

    assert [e.split(":")[0] for e in got.errors] == ["message_id", "content_type", "x-schema-version"]


def test_a_body_over_the_limit_is_refused_invalid_message_before_parsing() -> None:
    d = _delivery()

    got = _refused(d, max_body=len(d.body) - 1)

    assert got.reason is QueueReason.INVALID_MESSAGE
    assert got.errors == [f"body: {len(d.body)} bytes is over the limit of {len(d.body) - 1}"]
    assert isinstance(_classify(d, max_body=len(d.body)), Accepted), "a body at the limit is taken"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"request_id": "R1"', json.dumps(sign_request("12345")).encode()],
)
def test_a_body_that_is_not_a_valid_message_is_refused_invalid_message(body: bytes) -> None:
    got = _refused(_delivery(body))

    assert got.reason is QueueReason.INVALID_MESSAGE and got.sender == ICBC
    assert got.errors


@pytest.mark.parametrize(
    "over",
    [
        {"account_no": CARD + "0000"},  # too long
        {"account_no": int(CARD)},  # a number, not a string
        {"account_no": [CARD]},
        {"id_no": CARD},
        {"phone": CARD},
        {"holder_name": CARD * 4},
        {"request_id": CARD + "/x"},
        {"channel": CARD},
    ],
)
def test_validation_errors_never_echo_the_input_so_a_card_number_stays_out_of_them(
    over: dict[str, Any],
) -> None:
    got = _refused(_delivery(sign_request("13800138000") | over))

    assert got.reason is QueueReason.INVALID_MESSAGE
    text = " ".join(got.errors)
    assert CARD not in text and CARD[:12] not in text, text
    field = next(iter(over))
    assert any(e.startswith(field) for e in got.errors), f"the error must name {field}: {got.errors}"


# --- masking -------------------------------------------------------------------------------


def test_a_card_number_keeps_its_first_6_and_last_4_digits() -> None:
    assert mask_card("6222020200112233445") == "622202*********3445"
    assert mask_card("622202001122") == "622202**1122"


def test_a_number_too_short_to_be_a_card_is_starred_whole() -> None:
    assert mask_card("1234567890") == "**********"


def test_an_id_number_keeps_only_its_last_4_characters() -> None:
    assert mask_id(ID_NO) == "*" * 14 + "002X"


def test_mask_body_masks_account_and_id_numbers_at_any_depth_and_leaves_the_rest() -> None:
    body = {"phone": "13800138000", "account_no": CARD,
            "items": [{"id_no": ID_NO, "note": "x"}, {"deep": {"account_no": CARD}}]}  # fmt: skip

    masked = mask_body(body)

    assert masked == {"phone": "13800138000", "account_no": "622202*********3445",
                      "items": [{"id_no": "**************002X", "note": "x"},
                                {"deep": {"account_no": "622202*********3445"}}]}  # fmt: skip
    assert body["account_no"] == CARD, "the original must not be changed"


def test_digits_that_look_like_card_or_id_numbers_are_masked_in_free_text() -> None:
    text = f"bad body: card {CARD}, id {ID_NO}, phone 13800138000, amount 5000"

    masked = mask_digits_in_text(text)

    assert CARD not in masked and ID_NO not in masked
    assert "622202*********3445" in masked and "**************002X" in masked
    assert "13800138000" in masked and "5000" in masked, "an 11-digit phone and amounts stay readable"


def test_a_json_body_copy_has_its_numbers_masked_and_stays_json() -> None:
    raw = json.dumps(sign_request("13800138000"), ensure_ascii=False).encode()

    copy = json.loads(masked_body(raw))

    assert copy["account_no"] == "622202*********3445" and copy["id_no"] == "**************002X"
    assert copy["holder_name"] == "张三" and copy["phone"] == "13800138000"


@pytest.mark.parametrize(
    "raw", [f"account_no={CARD}&id_no={ID_NO}".encode(), b"\xff\xfe garbage " + CARD.encode()]
)
def test_a_body_that_is_not_json_is_masked_by_pattern(raw: bytes) -> None:
    copy = masked_body(raw)

    assert CARD.encode() not in copy and ID_NO.encode() not in copy
    assert b"622202*********3445" in copy


def test_a_card_or_id_number_sent_as_a_json_number_is_masked_in_the_copy_too() -> None:
    raw = json.dumps({"account_no": int(CARD), "id_no": 110105194912310021}).encode()

    copy = masked_body(raw)

    assert CARD.encode() not in copy and b"110105194912310021" not in copy
