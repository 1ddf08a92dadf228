"""Housekeeping in the background, in short units of work so signings are never held up:

- pruning: inbox records and sent outbox rows older than the retention (at least 7 days, the
  contract's idempotency window) are deleted; within the window a repeat still has one effect and
  gets its answer copied. Agreements, history, events, cases and dead messages are never pruned.
- re-encryption after a key rotation: with SIGNHUB_DATA_KEY="new,old" every stored token not
  readable with the new key alone is re-encrypted under it; when done the old key can go.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hub.protection import DataProtector
from hub.store.rows import ts
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.housekeeping")
BATCH = 500

# (table, key column, encrypted column) of every plain Fernet token the store keeps.
_TOKEN_COLUMNS = (
    ("agreements", "agreement_id", "account_enc"),
    ("cases", "case_id", "original_enc"),
    ("dead_messages", "dead_id", "original_enc"),
    ("meta", "key", "value"),
)


async def prune(store: Store, now: datetime, retention: timedelta) -> int:
    """Deletes, batch by batch, what is older than the retention; returns how many rows went."""
    before = ts(now - retention)
    statements = (
        "DELETE FROM inbox WHERE (sender, message_id) IN"
        " (SELECT sender, message_id FROM inbox WHERE received_at < ? LIMIT ?)",
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL AND created_at < ? LIMIT ?)",
    )
    removed = 0
    for sql in statements:
        while True:
            async with store.unit_of_work() as uow:
                count = await uow.execute(sql, (before, BATCH))
            removed += count
            if count < BATCH:
                break
    return removed


async def reencrypt(store: Store, protector: DataProtector) -> int:
    """Re-encrypts, batch by batch, every token the newest key alone cannot read; returns the count."""
    done = 0
    for table, key, column in _TOKEN_COLUMNS:
        done += await _reencrypt_column(store, protector, table, key, column)
    done += await _reencrypt_flows(store, protector)
    return done


async def _reencrypt_column(store: Store, protector: DataProtector, table: str, key: str, column: str) -> int:
    done, after = 0, ""
    while True:
        rows = await store.query(f"SELECT {key} AS k, {column} AS v FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                                 (after, BATCH))  # fmt: skip
        stale = [(r["k"], r["v"]) for r in rows if not protector.is_current(r["v"])]
        async with store.unit_of_work() as uow:
            for k, token in stale:
                await uow.execute(
                    f"UPDATE {table} SET {column}=? WHERE {key}=?", (protector.rotate(token), k)
                )
        done += len(stale)
        if len(rows) < BATCH:
            return done
        after = rows[-1]["k"]


async def _reencrypt_flows(store: Store, protector: DataProtector) -> int:
    done, after = 0, ""
    while True:
        rows = await store.query("SELECT flow_key, data FROM flows WHERE flow_key > ? ORDER BY flow_key LIMIT ?",
                                 (after, BATCH))  # fmt: skip
        changed = [(r["flow_key"], data) for r in rows if (data := _rotated_flow(r["data"], protector))]
        async with store.unit_of_work() as uow:
            for flow_key, data in changed:
                await uow.execute("UPDATE flows SET data=? WHERE flow_key=?", (data, flow_key))
        done += len(changed)
        if len(rows) < BATCH:
            return done
        after = rows[-1]["flow_key"]


def _rotated_flow(text: str, protector: DataProtector) -> str | None:
    data: dict[str, Any] = json.loads(text)
    tokens = [data["account"][2], data.get("id_encrypted")]
    if all(t is None or protector.is_current(t) for t in tokens):
        return None
    data["account"][2] = protector.rotate(data["account"][2])
    if data.get("id_encrypted"):
        data["id_encrypted"] = protector.rotate(data["id_encrypted"])
    return json.dumps(data, separators=(",", ":"))


class Housekeeper:
    """Runs pruning every `every`, and one re-encryption pass at start when a rotation is under way."""

    def __init__(self, store: Store, protector: DataProtector, clock: Callable[[], datetime],
                 retention: timedelta, every: timedelta) -> None:  # fmt: skip
        self._store, self._protector, self._clock = store, protector, clock
        self._retention, self._every = retention, every

    async def run(self) -> None:
        if self._protector.rotating:
            count = await reencrypt(self._store, self._protector)
            log.warning(
                "re-encryption complete: %d values moved to the newest key; older keys can be removed", count
            )
        while True:
            try:
                removed = await prune(self._store, self._clock(), self._retention)
                if removed:
                    log.info("pruned %d inbox and sent outbox rows older than %s", removed, self._retention)
            except Exception:
                log.exception("housekeeping failed; trying again later")
            await asyncio.sleep(self._every.total_seconds())  # a schedule, not a wait for an event
