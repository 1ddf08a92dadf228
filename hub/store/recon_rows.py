"""What reconciliation reads and writes in one unit of work: its files, held records, and
corrections applied a batch at a time with set-wise statements (written against
`hub.store.dbapi.Db`, so SQLite and PostgreSQL both serve)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hub.agreements import Agreement
from hub.errors import Conflict
from hub.store.dbapi import Db, UniqueViolation
from hub.store.rows import agreement_to_row, row_to_agreement, terms_of, ts

SOURCE = "RECONCILIATION"
_CHUNK = 500  # keys per IN (...): far below every driver's parameter limit


class ReconRows:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def file(self, party: str, file_name: str) -> dict[str, Any] | None:
        row = await self._db.one(
            "SELECT * FROM recon_files WHERE party=? AND file_name=?", (party, file_name)
        )
        return None if row is None else dict(row)

    async def file_by_errors(self, party: str, errors_file: str) -> dict[str, Any] | None:
        row = await self._db.one(
            "SELECT * FROM recon_files WHERE party=? AND errors_file=?", (party, errors_file)
        )
        return None if row is None else dict(row)

    async def add_file(self, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        await self._db.run(f"INSERT INTO recon_files ({cols}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))  # fmt: skip

    async def drop_file(self, party: str, file_name: str) -> None:
        await self._db.run("DELETE FROM recon_files WHERE party=? AND file_name=?", (party, file_name))

    async def update_file(self, party: str, file_name: str, **fields: Any) -> None:
        sets = ", ".join(f"{name}=?" for name in fields)
        await self._db.run(f"UPDATE recon_files SET {sets} WHERE party=? AND file_name=?",
                           (*fields.values(), party, file_name))  # fmt: skip

    async def held(self, party: str) -> list[dict[str, Any]]:
        rows = await self._db.all("SELECT * FROM recon_held WHERE party=?", (party,))
        return [dict(r) for r in rows]

    async def hold(self, party: str, held: Sequence[tuple[str, str, str | None]], business_date: str) -> None:
        """Records (key, side, line) held past the cut-off, to be looked at with the next file."""
        if held:
            await self._db.many(
                "INSERT INTO recon_held (party, record_key, side, line, business_date) VALUES (?,?,?,?,?)"
                " ON CONFLICT (party, record_key) DO UPDATE SET side=excluded.side, line=excluded.line,"
                " business_date=excluded.business_date",
                [(party, key, side, line, business_date) for key, side, line in held],
            )

    async def release_held(self, party: str, before: str) -> None:
        await self._db.run("DELETE FROM recon_held WHERE party=? AND business_date<?", (party, before))

    async def agreements(self, ids: Sequence[str]) -> dict[str, Agreement]:
        found: dict[str, Agreement] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = await self._db.all(
                f"SELECT * FROM agreements WHERE agreement_id IN ({','.join('?' * len(chunk))})"
                + self._db.for_update,
                chunk,
            )
            found.update((r["agreement_id"], row_to_agreement(r)) for r in rows)
        return found

    async def active_of(self, phones: Sequence[str]) -> dict[str, str]:
        """phone -> its ACTIVE agreement_id, for the numbers that have one."""
        found: dict[str, str] = {}
        for i in range(0, len(phones), _CHUNK):
            chunk = phones[i : i + _CHUNK]
            rows = await self._db.all(
                "SELECT phone, agreement_id FROM agreements WHERE status='ACTIVE'"
                f" AND phone IN ({','.join('?' * len(chunk))})", chunk,
            )  # fmt: skip
            found.update((r["phone"], r["agreement_id"]) for r in rows)
        return found

    async def known_bank_numbers(self, bank: str, numbers: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(numbers), _CHUNK):
            chunk = numbers[i : i + _CHUNK]
            rows = await self._db.all(
                f"SELECT bank_agreement_no FROM agreements WHERE bank=? AND bank_agreement_no IN"
                f" ({','.join('?' * len(chunk))})", (bank, *chunk),
            )  # fmt: skip
            found.update(r["bank_agreement_no"] for r in rows)
        return found

    async def save_changes(self, changes: Sequence[tuple[Agreement, Agreement, str]], message_id: str,
                           now: datetime) -> None:  # fmt: skip
        """New versions (before, after, discrepancy class), with history and a timeline event each."""
        if not changes:
            return
        # The rows were read in this unit of work (FOR UPDATE on PostgreSQL; SQLite has one
        # writer), so the versions still hold: one set-wise statement for the batch.
        # Only what a correction changes: fewer index entries to touch.
        at = ts(now)  # every correction of the batch is made now
        rows = [(a.status.value, a.version, a.user_type.value, a.recharge_threshold, a.recharge_amount, int(a.auto_pay),
                 at, a.agreement_id, b.version) for b, a, _ in changes]  # fmt: skip
        try:
            await self._db.many(
                "UPDATE agreements SET status=?, version=?, user_type=?, recharge_threshold=?, recharge_amount=?,"
                " auto_pay=?, updated_at=? WHERE agreement_id=? AND version=?", rows,
            )  # fmt: skip
        except UniqueViolation as exc:
            raise Conflict("phone", None) from exc
        await self._history([(before, after, cls) for before, after, cls in changes], message_id, now)

    async def insert(self, created: Sequence[tuple[Agreement, str]], message_id: str, now: datetime) -> None:
        if not created:
            return
        rows = [agreement_to_row(a) for a, _ in created]
        cols = list(rows[0])
        try:
            await self._db.many(f"INSERT INTO agreements ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                [tuple(r[c] for c in cols) for r in rows])  # fmt: skip
        except UniqueViolation as exc:
            raise Conflict("phone", None) from exc
        await self._history([(None, a, cls) for a, cls in created], message_id, now)

    async def _history(self, changes: Sequence[tuple[Agreement | None, Agreement, str]], message_id: str,
                       now: datetime) -> None:  # fmt: skip
        at = ts(now)
        await self._db.many(
            "INSERT INTO agreement_history (agreement_id, version, at, source, message_id, change, before, after)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(a.agreement_id, a.version, at, SOURCE, message_id, "RECONCILE",
              None if b is None else json.dumps(terms_of(b)), json.dumps(terms_of(a))) for b, a, _ in changes],
        )  # fmt: skip
        await self._db.many(
            "INSERT INTO events (at, agreement_id, flow_key, event, party, message_id, detail) VALUES (?,?,?,?,?,?,?)",
            [(at, a.agreement_id, None, "agreement.reconciled", SOURCE, message_id,
              json.dumps({"discrepancy": cls, "version": a.version, "status": a.status.value}))
             for _, a, cls in changes],
        )  # fmt: skip
