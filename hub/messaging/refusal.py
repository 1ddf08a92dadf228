"""What a refused delivery leaves behind, built without side effects: the dead record the console
shows and replays, the masked copy for the dead queue, and `message.rejected` for a known sender.
The intake (`hub.services.intake`) decides that a message is refused and writes these in one unit
of work.

What the party named (routing key, type, message_id) is kept masked, the record as its copy (the
console finds the copy by them); of an oversize body only a prefix is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.common import Message, ReasonCode
from contracts.rejection import MessageRejected
from contracts.routing import Party
from hub.messaging.copies import kept_of, masked_properties, queue_copy, shown, shown_if_any
from hub.messaging.edge import Delivery, Rejected, sender_of
from hub.outgoing import Outgoing, QueueCopy, Target
from hub.parties import Registry
from hub.protection import DataProtector, mask_digits_in_text
from hub.store.unit_of_work import DeadRecord

MAX_BODY = 64 * 1024  # a longer body is refused, and kept as a prefix (hub.messaging.copies)


@dataclass(frozen=True, slots=True)
class Refusal:
    record: DeadRecord
    out: list[Outgoing | QueueCopy]  # the dead copy, and the answer to a known sender
    sender: str  # as the log shows it: the registered party, else as the routing key claims
    error: str  # every error, joined


def refusal(d: Delivery, rejected: Rejected, dead_id: str, now: datetime, protector: DataProtector) -> Refusal:
    error = "; ".join(rejected.errors)
    sender = str(rejected.sender) if rejected.sender else claimed_sender(d.routing_key)
    kept = kept_of(d.body, MAX_BODY)
    record = DeadRecord(
        dead_id, str(rejected.sender) if rejected.sender else None, shown_if_any(d.message_id), shown(d.routing_key),
        shown_if_any(rejected.msg_type), rejected.reason.value, mask_digits_in_text(error), masked_properties(d, kept),
        protector.encrypt(kept.body), now,
    )  # fmt: skip
    out: list[Outgoing | QueueCopy] = [queue_copy(
        Target.DEAD, raw_body=kept.body, message_id=d.message_id or dead_id,
        msg_type=d.msg_type or rejected.msg_type or "", sender=sender, routing_key=d.routing_key,
        reason=rejected.reason.value, error=error, original_length=kept.length,
    )]  # fmt: skip
    if rejected.sender is not None:
        out.append(Outgoing(rejected.sender, "message.rejected", rejection(d, rejected), d.message_id))
    return Refusal(record, out, sender, error)


def rejection(d: Delivery, rejected: Rejected) -> Message:
    """`message.rejected` for the sender. RETRIES_EXHAUSTED is a queue reason only: answers carry
    OTHER with the reason first in `errors`."""
    code = ReasonCode.__members__.get(rejected.reason.value, ReasonCode.OTHER)
    errors = [mask_digits_in_text(e) for e in rejected.errors]
    if code is ReasonCode.OTHER:
        errors.insert(0, rejected.reason.value)
    # The sender's own message_id comes back as it gave it (to correlate); a type with a number is masked.
    return MessageRejected(message_id=d.message_id or "", type=shown(rejected.msg_type or d.msg_type or ""),
                           reason_code=code, errors=errors)  # fmt: skip


def log_ids(d: Delivery, sender: str | None = None) -> dict[str, Any]:
    """The ids a log line about `d` carries (hub.logging writes them as fields)."""
    return {"message_id": d.message_id, "correlation_id": d.correlation_id, "msg_type": d.msg_type,
            "sender": sender or claimed_sender(d.routing_key)}  # fmt: skip


def claimed_sender(routing_key: str) -> str:
    """`<kind>.<code>` as the routing key names it (`bank.NOPE.sign.request` -> `bank.NOPE`), for a
    sender the registry does not know; the type after it may itself contain dots."""
    return ".".join(routing_key.split(".")[:2])


def known_sender(d: Delivery, registry: Registry) -> Party | None:
    sender = sender_of(d.routing_key)
    return sender if sender is not None and registry.knows(sender) else None


def known_sender_or_none(d: Delivery, registry: Registry) -> Party | None:
    """`known_sender`, or None where even asking fails (a refusal must not fail on it)."""
    try:
        return known_sender(d, registry)
    except Exception:
        return None
