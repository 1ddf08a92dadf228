"""The outbox as a test reads it: which rows are not marked sent yet."""

from __future__ import annotations

from hub.store.unit_of_work import Store

_UNSENT = "SELECT id, message_id FROM outbox WHERE sent_at IS NULL ORDER BY id"


async def unsent_ids(store: Store) -> dict[str, int]:
    """message_id -> row id of every outbox row not marked sent, oldest first. On SQLite a mark
    the relay took is written a little later (with the next unit of work, or within 50 ms)."""
    return {r["message_id"]: r["id"] for r in await store.query(_UNSENT)}
