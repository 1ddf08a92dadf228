"""The AMQP envelope (CONTRACT.md, "Envelope"): property rules and the header names.

`check_envelope` is the one place the property rules are enforced; it returns the problems
found, so the refusal can list them all to the sender.
"""

from __future__ import annotations

import re
from typing import Any

SCHEMA_VERSION = 1
CONTENT_TYPE = "application/json"

H_SCHEMA_VERSION = "x-schema-version"
H_REASON = "x-signhub-reason"
H_ERROR = "x-signhub-error"
H_SENDER = "x-signhub-sender"
H_ROUTING_KEY = "x-signhub-routing-key"
H_CASE_ID = "x-signhub-case-id"
H_EXISTING_AGREEMENT_ID = "x-signhub-existing-agreement-id"
H_SOURCE = "x-signhub-source"
H_REPLAY = "x-signhub-replay"
H_SEAL = "x-signhub-seal"  # the hub's HMAC over what it says to itself (hub.messaging.seal)
# On a dead copy of an oversize message, only a prefix is kept: these say how much of how much.
H_BODY_LENGTH = "x-signhub-body-length"
H_BODY_KEPT = "x-signhub-body-kept"

_MESSAGE_ID = re.compile(r"^[\x20-\x7e]{1,64}$")


def valid_message_id(value: str | None) -> bool:
    return value is not None and bool(_MESSAGE_ID.match(value))


def check_envelope(
    *,
    message_id: str | None,
    msg_type: str | None,
    key_type: str,
    content_type: str | None,
    headers: dict[str, Any],
) -> list[str]:
    """Problems with a party's envelope; empty when it follows the contract."""
    problems: list[str] = []
    if not valid_message_id(message_id):
        problems.append("message_id: required, 1-64 printable ASCII characters")
    if msg_type != key_type:
        problems.append(f"type: property {msg_type!r} must equal the routing key's type {key_type!r}")
    if content_type is not None and content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        problems.append(f"content_type: {content_type!r} is not {CONTENT_TYPE}")
    version = headers.get(H_SCHEMA_VERSION)
    # A missing header is read as version 1: the only schema version so far (contract 1.1 kept it).
    if version is not None and str(version) != str(SCHEMA_VERSION):
        problems.append(f"{H_SCHEMA_VERSION}: {version!r} is not supported (only {SCHEMA_VERSION})")
    return problems
