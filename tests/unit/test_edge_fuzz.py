"""Property-based fuzzing of the hub's edge (`hub.messaging.edge.classify`, then the intake's
NOT_SUPPORTED check), thousands of inputs: every inbound type of the catalogue and the envelope,
spoilt in every way bench/fuzz_inputs.py knows. Each verdict is compared with the input's own label,
which the generator built from how it made the input (bench/fuzz_expect.py), not from the hub:
nothing raises; what the contract refuses is Rejected with the label's reason, the party to tell and
the errors that say why; valid messages, also with unknown extra fields, are Accepted."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_expect import REQUIRED
from bench.fuzz_inputs import MAX_BODY, VALID, FuzzInput, fuzz_input
from contracts import catalogue
from contracts.common import QueueReason
from contracts.routing import Party, PartyKind
from hub.messaging.edge import Accepted, Delivery, Rejected, classify
from hub.parties import Registry
from hub.services.dispatch import route

REGISTRY = Registry.of(["ICBC", "CCB"], ["GD", "BJ"])
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
FAST = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=_QUIET)
FEWER = settings(max_examples=300, deadline=None, database=None, suppress_health_check=_QUIET)


def _classify(d: Delivery) -> Accepted | Rejected:
    return classify(d, REGISTRY, require_user_id=False, max_body=MAX_BODY)


def _take(d: Delivery) -> Accepted | Rejected:
    """What the intake decides before any flow runs (hub/services/intake.py `_classify`)."""
    verdict = _classify(d)
    if isinstance(verdict, Accepted) and isinstance(why := route(verdict), str):
        return Rejected(QueueReason.NOT_SUPPORTED, [why], verdict.sender, verdict.msg_type)
    return verdict


@pytest.mark.parametrize("entry", catalogue.INBOUND, ids=lambda e: f"{e.kind.value}.{e.type}")
def test_the_fuzzers_valid_bodies_are_valid_for_every_inbound_type(entry: catalogue.Entry) -> None:
    assert (entry.kind, entry.type) in VALID
    entry.model.model_validate_json(json.dumps(VALID[(entry.kind, entry.type)]))


@pytest.mark.parametrize("entry", catalogue.INBOUND, ids=lambda e: f"{e.kind.value}.{e.type}")
def test_every_field_the_hub_requires_is_one_the_contract_requires(entry: catalogue.Entry) -> None:
    required = {name for name, f in entry.model.model_fields.items() if f.is_required()}
    assert required <= REQUIRED[(entry.kind, entry.type)]


@FAST
@given(fuzz_input(), st.integers(0, 10**9))
def test_every_fuzzed_input_is_taken_or_refused_as_its_own_label_says_and_nothing_raises(
    given_input: FuzzInput, n: int
) -> None:
    expect = given_input.expect

    verdict = _take(given_input.delivery(n))

    if expect.accepted or expect.needs_state:  # a refusal for what the hub holds comes later, in the flow
        assert isinstance(verdict, Accepted), (given_input.kind, expect, verdict)
        assert verdict.message_id == given_input.message_id(n)
        assert str(verdict.sender) == given_input.made.sender
    else:
        assert isinstance(verdict, Rejected), (given_input.kind, expect, given_input)
        assert (verdict.reason.value, verdict.sender) == (expect.reason, _party(expect.answer_to)), (
            given_input.kind, verdict)  # fmt: skip
        assert verdict.errors and all(isinstance(e, str) and e for e in verdict.errors)


def _party(name: str | None) -> Party | None:
    return Party.parse(name) if name is not None else None


@FEWER
@given(fuzz_input(body_kinds=("extra",), envelopes=("ok",)))
def test_unknown_extra_fields_are_ignored_and_the_message_is_the_same(given_input: FuzzInput) -> None:
    verdict = _classify(given_input.delivery(1))

    assert isinstance(verdict, Accepted)
    key = (Party.parse(given_input.routing_key.rsplit(".", 2)[0]).kind, verdict.msg_type)
    entry = catalogue.inbound(*key)
    assert entry is not None and verdict.message == entry.model.model_validate_json(json.dumps(VALID[key]))


_TEXT = st.text(max_size=300) | st.text(st.characters(codec="ascii"), max_size=40)
_HEADER_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT | st.binary(max_size=20)


@FAST
@given(
    routing_key=_TEXT | st.sampled_from(["bank.ICBC.sign.request", "crm.GD.verify.response", "boss.BJ.x"]),
    body=st.binary(max_size=2000),
    message_id=st.none() | _TEXT,
    msg_type=st.none() | _TEXT,
    content_type=st.none() | _TEXT,
    headers=st.dictionaries(_TEXT, _HEADER_VALUES, max_size=4),
    user_id=st.none() | _TEXT,
    require_user_id=st.booleans(),
)
def test_arbitrary_deliveries_never_raise_and_are_accepted_only_when_well_formed(
    routing_key: str, body: bytes, message_id: str | None, msg_type: str | None, content_type: str | None,
    headers: dict[str, Any], user_id: str | None, require_user_id: bool,
) -> None:  # fmt: skip
    d = Delivery(routing_key, body, message_id, msg_type, content_type, user_id=user_id, headers=headers)

    verdict = classify(d, REGISTRY, require_user_id=require_user_id, max_body=MAX_BODY)

    if isinstance(verdict, Accepted):
        assert verdict.message_id == message_id and routing_key.endswith("." + (msg_type or "?"))
        assert not require_user_id or user_id == str(verdict.sender)
    else:
        assert verdict.errors and verdict.reason is not None


@FEWER
@given(fuzz_input(body_kinds=("valid", "extra"), envelopes=("ok",)), st.integers(1, 3000))
def test_a_body_over_the_size_limit_is_refused_whatever_else_it_holds(
    given_input: FuzzInput, over: int
) -> None:
    body = given_input.body[:-1] + b', "pad": "' + b"x" * (MAX_BODY + over) + b'"}'

    verdict = _classify(replace(given_input, body=body).delivery(7))

    assert isinstance(verdict, Rejected) and verdict.reason.value == "INVALID_MESSAGE"
    assert any("over the limit" in e for e in verdict.errors)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_body_holding_nan_or_infinity_is_not_json_and_is_refused(number: bytes) -> None:
    body = json.dumps(VALID[(PartyKind.CRM, "sign.synced")]).encode()[:-1] + b', "x": ' + number + b"}"
    d = Delivery("crm.GD.sign.synced", body, "m-1", "sign.synced", "application/json")

    verdict = _classify(d)

    assert isinstance(verdict, Rejected) and verdict.reason.value == "INVALID_MESSAGE"
