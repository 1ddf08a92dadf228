"""The audit log: every operator action (who, when, what, why, before and after), appended to a
table the store refuses to update or delete, each row chained to the one before by a hash.

`hash = sha256(prev_hash + canonical JSON of the row)`; the first row's prev_hash is 64 zeros.
prev_hash is unique, so two writers cannot both append after the same row (the loser retries).
Verifying recomputes the chain: a changed, removed or inserted row breaks it from there on.
Personal numbers never enter it: callers pass masked bodies.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.store.dbapi import UniqueViolation
from hub.store.rows import ts
from hub.store.unit_of_work import Store

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "action", "target", "reason", "before", "after")
_ATTEMPTS = 5


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    canonical = json.dumps({k: row.get(k) for k in FIELDS}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))  # fmt: skip
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


async def record(
    store: Store, now: datetime, actor: str, action: str, *, target: str | None = None, reason: str | None = None,
    before: Any = None, after: Any = None,
) -> int:  # fmt: skip
    """Appends one entry; returns its sequence number."""
    for attempt in range(_ATTEMPTS):
        try:
            async with store.unit_of_work() as uow:
                tail = await uow.ops().audit_tail()
                seq, prev = (tail[0] + 1, tail[1]) if tail else (1, GENESIS)
                row: dict[str, Any] = {"seq": seq, "at": ts(now), "actor": actor, "action": action, "target": target,
                                       "reason": reason, "before": _json(before), "after": _json(after)}  # fmt: skip
                await uow.ops().add_audit(row | {"prev_hash": prev, "hash": row_hash(prev, row)})
            return seq
        except UniqueViolation:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_rows(rows: list[dict[str, Any]]) -> Verdict:
    """Checks the chain of `rows` (ordered by seq, all of them)."""
    prev = GENESIS
    for index, row in enumerate(rows, start=1):
        if row["seq"] != index:
            return Verdict(False, len(rows), row["seq"], f"row {index} is missing")
        if row["prev_hash"] != prev:
            return Verdict(False, len(rows), row["seq"], "prev_hash does not name the row before")
        if row_hash(prev, row) != row["hash"]:
            return Verdict(False, len(rows), row["seq"], "the row's content does not match its hash")
        prev = row["hash"]
    return Verdict(True, len(rows))


async def entries(store: Store, limit: int | None = None, target: str | None = None) -> list[dict[str, Any]]:
    """Audit rows in order (all, or the newest `limit`; or those about one target)."""
    rows = await store.console().audit_log(target)
    return rows[-limit:] if limit else rows


async def verify(store: Store) -> Verdict:
    return verify_rows(await entries(store))


def export_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FIELDS, "prev_hash", "hash"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def export_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
