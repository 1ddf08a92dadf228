"""Turns what flows ask to send into outbox rows: routing key, message_id, serialised body."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.topology import Names
from hub.flows.common import NewId
from hub.outgoing import Outgoing, QueueCopy, Target
from hub.store.unit_of_work import OutboxRow


def to_rows(items: Sequence[Outgoing | QueueCopy], names: Names, new_id: NewId) -> list[OutboxRow]:
    rows: list[OutboxRow] = []
    for item in items:
        if isinstance(item, Outgoing):
            rows.append(OutboxRow(
                message_id=item.message_id or new_id("M"), target=Target.PARTY.value,
                routing_key=f"{item.to}.{item.type}", type=item.type, correlation_id=item.correlation_id,
                body=item.body.model_dump_json(exclude_none=True).encode(),
            ))  # fmt: skip
        else:
            queue = names.manual_queue if item.target is Target.MANUAL else names.dead_queue
            rows.append(OutboxRow(
                message_id=item.message_id, target=item.target.value, routing_key=queue, type=item.type,
                correlation_id=None, body=item.body, headers=item.headers,
            ))  # fmt: skip
    return rows
