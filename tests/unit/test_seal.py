"""Only the hub vouches for a retry or a replay (issue 14, item 1): the seal (hub/messaging/seal.py)
and the trust decision on a raw delivery (`hub.consumers.inbound.delivery_from`), without a broker.

A party can put any header on its message, `x-death` included; `delivery_from` believes the
internal headers only under a seal made with the hub's key, and otherwise takes the message as
the party's own publish, on the exchange and routing key it actually came by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from contracts.common import QueueReason
from contracts.topology import Names
from hub.consumers.inbound import delivery_from
from hub.messaging.edge import Delivery, Rejected, classify
from hub.messaging.retry import RetryScheduler
from hub.messaging.seal import Seal, Vouched
from hub.messaging.topology import HubNames
from hub.parties import Registry

NAMES = Names("t1")
HUB = HubNames(NAMES)
SEAL = Seal(b"k" * 32)
BODY = json.dumps({"phone": "13800138000"}).encode()
ORIGINAL = Vouched("crm.GD.unsign.request", "t1.crm.GD", "m-1", attempt=1)
FORGED = {"x-signhub-routing-key": "crm.GD.unsign.request", "x-signhub-user-id": "t1.crm.GD",
          "x-signhub-attempt": 1, "x-signhub-replay": "op", "x-signhub-seal": "0" * 64}  # fmt: skip
REGISTRY = Registry.of(["ICBC", "CCB"], ["GD", "BJ"])


@dataclass
class Raw:
    """What `delivery_from` reads of an aio-pika incoming message."""

    routing_key: str
    exchange: str = "t1.inbound"
    body: bytes = BODY
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = "m-1"
    type: str | None = "unsign.request"
    content_type: str | None = "application/json"
    correlation_id: str | None = None
    user_id: str | None = None
    redelivered: bool = False


def _death(exchange: str, routing_key: str, queue: str = "t1.hub.retry.1") -> list[dict[str, Any]]:
    return [{"count": 1, "reason": "expired", "queue": queue, "exchange": exchange, "routing-keys": [routing_key]}]


def _taken(raw: Raw) -> Delivery:
    return delivery_from(raw, NAMES, SEAL)  # type: ignore[arg-type]


# --- the seal ------------------------------------------------------------------------------


def test_the_seal_verifies_what_the_hub_sealed_and_says_it_back() -> None:
    headers = SEAL.headers(ORIGINAL, BODY)

    assert SEAL.read(headers, "m-1", BODY) == ORIGINAL


@pytest.mark.parametrize(
    "change",
    [
        {"x-signhub-routing-key": "bank.ICBC.unsign.request"},
        {"x-signhub-user-id": "t1.bank.ICBC"},
        {"x-signhub-attempt": 2},
        {"x-signhub-replay": "op"},
        {"x-signhub-seal": "0" * 64},
    ],
    ids=["routing key", "user_id", "attempt", "replay", "tag"],
)
def test_a_sealed_header_changed_breaks_the_seal(change: dict[str, Any]) -> None:
    headers = SEAL.headers(ORIGINAL, BODY) | change

    assert SEAL.read(headers, "m-1", BODY) is None


def test_the_seal_does_not_carry_over_to_another_body_or_message_id() -> None:
    headers = SEAL.headers(ORIGINAL, BODY)

    assert SEAL.read(headers, "m-1", BODY + b" ") is None
    assert SEAL.read(headers, "m-2", BODY) is None


def test_a_seal_made_with_another_key_does_not_verify() -> None:
    headers = Seal(b"x" * 32).headers(ORIGINAL, BODY)

    assert SEAL.read(headers, "m-1", BODY) is None


def test_a_message_sealed_without_a_message_id_keeps_none_under_the_one_aiormq_made_up() -> None:
    headers = SEAL.headers(replace(ORIGINAL, message_id=None), BODY)

    got = SEAL.read(headers, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", BODY)

    assert got is not None and got.message_id is None


# --- delivery_from: a party's message -------------------------------------------------------


def test_a_partys_message_with_a_forged_x_death_and_internal_headers_is_taken_under_its_own_key() -> None:
    raw = Raw("bank.ICBC.unsign.request", user_id="guest",
              headers=FORGED | {"x-death": _death("", HUB.inbound_queue), "x-schema-version": 1})  # fmt: skip

    d = _taken(raw)

    assert (d.routing_key, d.user_id, d.attempt, d.replay) == ("bank.ICBC.unsign.request", "guest", 0, False)
    assert d.headers == {"x-schema-version": 1}, "a party's internal headers are dropped unread"


def test_a_message_put_straight_on_the_hubs_queue_with_forged_headers_names_no_party() -> None:
    raw = Raw(HUB.inbound_queue, exchange="", headers=dict(FORGED))

    d = _taken(raw)
    verdict = classify(d, REGISTRY, require_user_id=False, max_body=65536)

    assert d.routing_key == HUB.inbound_queue and not d.replay
    assert isinstance(verdict, Rejected) and verdict.reason is QueueReason.UNKNOWN_SENDER


def test_a_forged_replay_does_not_skip_the_user_id_check() -> None:
    raw = Raw("bank.ICBC.unsign.request", headers={"x-signhub-replay": "op", "x-schema-version": 1})

    d = _taken(raw)
    verdict = classify(d, REGISTRY, require_user_id=True, max_body=65536, user_prefix="t1.")

    assert not d.replay
    assert isinstance(verdict, Rejected) and verdict.reason is QueueReason.UNAUTHORIZED_SENDER


def test_real_sealed_headers_copied_onto_another_body_are_not_believed() -> None:
    raw = Raw("bank.ICBC.unsign.request", body=b'{"phone": "13900139000"}',
              headers=SEAL.headers(ORIGINAL, BODY) | {"x-death": _death("", HUB.inbound_queue)})  # fmt: skip

    assert _taken(raw).routing_key == "bank.ICBC.unsign.request"


# --- delivery_from: the hub's own retries and replays ------------------------------------------


def test_a_sealed_retry_keeps_its_original_sender_user_id_and_attempt() -> None:
    raw = Raw(HUB.inbound_queue, exchange="",
              headers=SEAL.headers(ORIGINAL, BODY) | {"x-death": _death("", HUB.retry_queue(1))})  # fmt: skip

    d = _taken(raw)

    assert (d.routing_key, d.user_id, d.attempt, d.replay) == ("crm.GD.unsign.request", "t1.crm.GD", 1, False)
    assert d.headers == {}


def test_a_sealed_replay_is_a_replay_by_its_operator() -> None:
    vouched = Vouched("crm.GD.unsign.request", None, "m-1", replay_by="alice")
    raw = Raw(HUB.inbound_queue, exchange="", headers=SEAL.headers(vouched, BODY))

    d = _taken(raw)

    assert (d.routing_key, d.replay_by, d.attempt) == ("crm.GD.unsign.request", "alice", 0)


class _Channel:
    """Takes what the retry scheduler publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, str]] = []
        self.default_exchange = self

    async def publish(self, message: Any, routing_key: str, mandatory: bool, timeout: float | None = None) -> None:
        assert timeout is not None and timeout > 0  # a retry publish is bounded
        self.published.append((message, routing_key))


async def test_a_retry_the_scheduler_publishes_comes_back_as_the_same_delivery_one_attempt_on() -> None:
    channel = _Channel()
    original = Delivery("crm.GD.unsign.request", BODY, "m-1", "unsign.request", "application/json",
                        user_id="t1.crm.GD", headers={"x-schema-version": 1}, replay_by="alice")  # fmt: skip
    await RetryScheduler(channel, HUB, [0.1, 0.2], SEAL).schedule(original)  # type: ignore[arg-type]

    message, queue = channel.published[0]
    back = Raw(HUB.inbound_queue, exchange="", body=message.body, message_id=message.message_id,
               headers=dict(message.headers) | {"x-death": _death("", queue)})  # fmt: skip

    assert queue == HUB.retry_queue(1)
    assert _taken(back) == replace(original, attempt=1)


# --- delivery_from: a party's message the broker dead-lettered to the poison queue -------------


@pytest.mark.parametrize(
    ("user_id", "first_hop", "taken_as"),
    [
        ("t1.bank.ICBC", "bank.ICBC.sign.request", "bank.ICBC.sign.request"),
        ("t1.bank.ICBC", "crm.GD.unsign.request", HUB.poison_queue),
        (None, "crm.GD.unsign.request", HUB.poison_queue),
        ("guest", "crm.GD.unsign.request", HUB.poison_queue),
    ],
    ids=["its own party", "another party", "no user_id", "a user that is no party"],
)
def test_a_poisoned_message_keeps_its_first_hop_only_when_its_user_id_is_that_hops_party(
    user_id: str | None, first_hop: str, taken_as: str
) -> None:
    death = _death(NAMES.inbound_exchange, first_hop, queue=HUB.inbound_queue)
    raw = Raw(HUB.poison_queue, exchange="", user_id=user_id, headers={"x-death": death})

    assert _taken(raw).routing_key == taken_as
