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
from hub.store.housekeeping_rows import PRUNABLE, TOKEN_COLUMNS
from hub.store.rows import ts
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.housekeeping")
BATCH = 500


async def prune(store: Store, now: datetime, retention: timedelta) -> int:
    """Deletes, batch by batch, what is older than the retention; returns how many rows went."""
    before = str(ts(now - retention))
    removed = 0
    for table in PRUNABLE:
        while True:
            async with store.unit_of_work() as uow:
                count = await uow.housekeeping().prune(table, before, BATCH)
            removed += count
            if count < BATCH:
                break
    return removed


async def reencrypt(store: Store, protector: DataProtector) -> int:
    """Re-encrypts, batch by batch, every token the newest key alone cannot read; returns the count."""
    done = 0
    for column in TOKEN_COLUMNS:
        done += await _reencrypt_column(store, protector, column)
    done += await _reencrypt_flows(store, protector)
    return done


async def _reencrypt_column(store: Store, protector: DataProtector, column: str) -> int:
    done, after = 0, ""
    while True:
        rows = await store.housekeeping().tokens(column, after, BATCH)
        stale = [(k, token) for k, token in rows if not protector.is_current(token)]
        async with store.unit_of_work() as uow:
            for k, token in stale:
                await uow.housekeeping().set_token(column, k, protector.rotate(token))
        done += len(stale)
        if len(rows) < BATCH:
            return done
        after = rows[-1][0]


async def _reencrypt_flows(store: Store, protector: DataProtector) -> int:
    done, after = 0, ""
    while True:
        rows = await store.housekeeping().flow_data(after, BATCH)
        changed = [(flow_key, data) for flow_key, text in rows if (data := _rotated_flow(text, protector))]
        async with store.unit_of_work() as uow:
            for flow_key, data in changed:
                await uow.housekeeping().set_flow_data(flow_key, data)
        done += len(changed)
        if len(rows) < BATCH:
            return done
        after = rows[-1][0]


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
