"""Masked copies of a party's message for the manual and dead queues (CONTRACT.md)."""

from __future__ import annotations

import json
from typing import Any

from contracts import envelope as env
from contracts.masking import mask_body
from hub.outgoing import QueueCopy, Target
from hub.protection import mask_digits_in_text


def masked_body(raw: bytes) -> bytes:
    """The body with card and ID numbers masked; text that is not JSON is masked by pattern."""
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return mask_digits_in_text(raw.decode("utf-8", errors="replace")).encode()
    return json.dumps(mask_body(parsed), ensure_ascii=False, separators=(",", ":")).encode()


def queue_copy(
    target: Target,
    *,
    raw_body: bytes,
    message_id: str,
    msg_type: str,
    sender: str,
    routing_key: str,
    reason: str,
    error: str,
    extra: dict[str, Any] | None = None,
) -> QueueCopy:
    headers: dict[str, Any] = {
        env.H_REASON: reason,
        env.H_ERROR: mask_digits_in_text(error)[:1000],
        env.H_SENDER: sender,
        env.H_ROUTING_KEY: routing_key,
    }
    headers.update(extra or {})
    return QueueCopy(target, message_id, msg_type, masked_body(raw_body), headers)
