"""The hub's edge: a raw delivery is classified once, as accepted (typed and valid) or refused.

Pure: no broker, no store. Flows receive only what `classify` accepted, and never re-check shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import ValidationError

from contracts import catalogue
from contracts.common import Message, QueueReason
from contracts.envelope import check_envelope
from contracts.recon import SCOPES, ReconFile
from contracts.routing import Party, RoutingKey
from hub.parties import Registry


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the hub received it; `routing_key` is the party's original one."""

    routing_key: str
    body: bytes
    message_id: str | None
    msg_type: str | None
    content_type: str | None
    correlation_id: str | None = None
    user_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    replay_by: str | None = None  # the operator who replayed it (sealed by the hub: hub.messaging.seal)
    redelivered: bool = False  # the broker's own redelivery after the hub did not acknowledge

    @property
    def replay(self) -> bool:
        return self.replay_by is not None


@dataclass(frozen=True, slots=True)
class Accepted:
    sender: Party
    msg_type: str
    message: Message
    message_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: QueueReason
    errors: list[str]
    sender: Party | None  # a registered party that can be told; None: nobody to answer
    msg_type: str | None


def sender_of(routing_key: str) -> Party | None:
    parts = routing_key.split(".")
    if len(parts) < 2:
        return None
    try:
        return Party.parse(f"{parts[0]}.{parts[1]}")
    except ValueError:
        return None


def _validation_errors(exc: ValidationError) -> list[str]:
    # Only locations and messages: pydantic's input echo could carry a card number.
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()][:20]


def _holds_non_json_numbers(body: bytes) -> bool:
    """pydantic's JSON parser takes NaN and Infinity (in an ignored field too), which are not JSON.
    A plain byte scan first: the second, strict parse runs only for a body that holds those words."""
    if b"NaN" not in body and b"Infinity" not in body:
        return False
    try:
        pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError:
        return True
    return False


def classify(
    d: Delivery, registry: Registry, *, require_user_id: bool, max_body: int, user_prefix: str = ""
) -> Accepted | Rejected:
    """`user_prefix`: a party's broker user is `<user_prefix><kind>.<code>` (see hub.provision)."""
    sender = sender_of(d.routing_key)
    if sender is None or not registry.knows(sender):
        return Rejected(QueueReason.UNKNOWN_SENDER, [f"{d.routing_key!r} names no registered party"], None,
                        d.msg_type)  # fmt: skip
    try:
        key = RoutingKey.parse(d.routing_key)
    except ValueError as exc:
        return Rejected(QueueReason.UNKNOWN_TYPE, [str(exc)], sender, d.msg_type)
    if require_user_id and d.user_id != f"{user_prefix}{sender}" and not d.replay:
        return Rejected(QueueReason.UNAUTHORIZED_SENDER, [f"user_id {d.user_id!r} is not {sender}"], sender,
                        key.type)  # fmt: skip
    entry = catalogue.inbound(sender.kind, key.type)
    if entry is None:
        reason = (
            QueueReason.UNAUTHORIZED_SENDER
            if key.type in catalogue.INBOUND_TYPES
            else QueueReason.UNKNOWN_TYPE
        )
        return Rejected(reason, [f"a {sender.kind.value} may not send {key.type!r}"], sender, key.type)
    problems = check_envelope(
        message_id=d.message_id, msg_type=d.msg_type, key_type=key.type, content_type=d.content_type,
        headers=d.headers,
    )  # fmt: skip
    if len(d.body) > max_body:
        problems.append(f"body: {len(d.body)} bytes is over the limit of {max_body}")
    if problems:
        return Rejected(QueueReason.INVALID_MESSAGE, problems, sender, key.type)
    if _holds_non_json_numbers(d.body):
        return Rejected(QueueReason.INVALID_MESSAGE, ["body: NaN and Infinity are not JSON (RFC 8259)"], sender,
                        key.type)  # fmt: skip
    try:
        message = entry.model.model_validate_json(d.body)
    except ValidationError as exc:
        return Rejected(QueueReason.INVALID_MESSAGE, _validation_errors(exc), sender, key.type)
    if isinstance(message, ReconFile) and message.scope not in SCOPES[sender.kind]:
        # One model for every kind's recon.file; which scopes a kind may send is the contract's (1.1).
        allowed = "/".join(s.value for s in SCOPES[sender.kind])
        return Rejected(QueueReason.INVALID_MESSAGE, [f"scope: a {sender.kind.value}'s recon.file has scope "
                        f"{allowed}, not {message.scope.value}"], sender, key.type)  # fmt: skip
    assert d.message_id is not None
    return Accepted(sender, key.type, message, d.message_id)
