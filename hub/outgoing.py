"""What a flow asks to send: a message to a party, or a copy for the manual or dead queue (and
the outbox targets they become, with the hub's own queue for a replay).

Flows return these; the shell writes them to the outbox in the same transaction as the state
change, and the relay publishes them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.common import Message
from contracts.routing import Party


class Target(StrEnum):
    PARTY = "party"  # outbound exchange, routing key <kind>.<code>.<type>
    MANUAL = "manual"  # the manual-handling queue
    DEAD = "dead"  # the dead queue
    HUB = "hub"  # the hub's own inbound queue: an operator's replay (hub.services.operations)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for a party's queue; `message_id` set only when re-sending a copy."""

    to: Party
    type: str
    body: Message
    correlation_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueCopy:
    """A masked copy of a party's message for the manual or dead queue, with its headers."""

    target: Target
    message_id: str
    type: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
