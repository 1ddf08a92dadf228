"""Masked copies of a party's message for the manual and dead queues (CONTRACT.md).

What a party chose is shown masked: card and ID numbers in the body, and in the names it gave
(routing key, type, message_id). Making a copy never raises: a refusal that cannot be recorded
would be retried, then loop in the poison queue. Of an oversize body only a prefix is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from contracts import envelope as env
from contracts.masking import mask_body
from hub.messaging.edge import Delivery
from hub.outgoing import QueueCopy, Target
from hub.protection import mask_digits_in_text

KEPT_OF_OVERSIZE = 4096  # bytes of an oversize body kept in its dead record and dead copy
BODY_LENGTH, BODY_KEPT = "body_length", "body_kept"  # set in a dead record's properties when cut


@dataclass(frozen=True, slots=True)
class Kept:
    """What is kept of a refused body: all of it, or of an oversize one a prefix."""

    body: bytes
    length: int  # of the original

    @property
    def cut(self) -> bool:
        return len(self.body) < self.length


def kept_of(body: bytes, limit: int) -> Kept:
    """All of a body within `limit` bytes; of a longer one, its first KEPT_OF_OVERSIZE bytes."""
    return Kept(body if len(body) <= limit else body[:KEPT_OF_OVERSIZE], len(body))


def shown(text: str) -> str:
    """A name a party chose (routing key, type, message_id), as it may be shown: numbers masked."""
    return mask_digits_in_text(text)


def shown_if_any(text: str | None) -> str | None:
    return None if text is None else shown(text)


def masked_body(raw: bytes) -> bytes:
    """The body with card and ID numbers masked; text that is not JSON (or nested deeper than
    the parser's bound of 200 levels) is masked by pattern. Never raises."""
    try:
        # Read as json.loads reads bytes (UTF-8, -16 or -32), but parsed by pydantic-core: it refuses
        # deep nesting where json.loads (and mask_body after it) exhausted the stack, and a lone
        # surrogate that json.dumps then could not encode.
        masked = mask_body(from_json(raw.decode(json.detect_encoding(raw))))
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode()
    except Exception:
        return mask_digits_in_text(raw.decode("utf-8", errors="replace")).encode()


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
    original_length: int | None = None,
) -> QueueCopy:
    """`original_length`: of a body cut to `raw_body`, how long it was (said in two headers)."""
    headers: dict[str, Any] = {
        env.H_REASON: reason,
        env.H_ERROR: mask_digits_in_text(error)[:1000],
        env.H_SENDER: shown(sender),
        env.H_ROUTING_KEY: shown(routing_key),
    }
    if original_length is not None and original_length > len(raw_body):
        headers |= {env.H_BODY_LENGTH: original_length, env.H_BODY_KEPT: len(raw_body)}
    headers.update(extra or {})
    return QueueCopy(target, shown(message_id), shown(msg_type), masked_body(raw_body), headers)


def masked_properties(d: Delivery, kept: Kept) -> dict[str, Any]:
    """The envelope as the dead record keeps it for the console and a replay: masked, and never
    failing (a header nested too deep to write as JSON is kept as a note)."""
    texts = {"message_id": d.message_id, "type": d.msg_type, "content_type": d.content_type,
             "correlation_id": d.correlation_id, "user_id": d.user_id}  # fmt: skip
    props: dict[str, Any] = {name: shown_if_any(value) for name, value in texts.items()}
    props |= {"headers": {shown(str(k)): _header_value(v) for k, v in d.headers.items()}, "attempt": d.attempt}
    if kept.cut:
        props |= {BODY_LENGTH: kept.length, BODY_KEPT: len(kept.body)}
    return props


def _header_value(value: Any) -> Any:
    try:
        masked = mask_digits_in_text(json.dumps(value, default=str))
    except Exception:  # RecursionError: too deep to write
        return "<not readable>"
    try:
        return json.loads(masked)
    except Exception:  # a masked JSON number is no longer JSON: kept as its masked text
        return masked
