"""What reconciliation reads and writes in one unit of work: its files, held records, and
corrections applied a page at a time with set-wise statements (written against
`hub.store.dbapi.Db`; the corrections' guarded UPDATE is in SQLite's dialect, see `correct`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.errors import Conflict
from hub.store.dbapi import Db, UniqueViolation

if TYPE_CHECKING:
    from hub.flows.reconciliation import Terms

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

    async def versions(self, ids: Sequence[str]) -> dict[str, int]:
        """agreement_id -> its version now, for those that exist (read in this unit of work: FOR
        UPDATE on PostgreSQL; SQLite has one writer, so the versions hold until it commits)."""
        found: dict[str, int] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = await self._db.all(
                f"SELECT agreement_id, version FROM agreements WHERE agreement_id IN ({','.join('?' * len(chunk))})"
                + self._db.for_update, chunk,
            )  # fmt: skip
            found.update((r["agreement_id"], r["version"]) for r in rows)
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

    async def correct(self, page: Page) -> set[str]:
        """Applies the page's pending changes, each only if its agreement is still at the version
        the comparison saw; returns the agreement ids changed. One statement per chunk: the
        version check and the change in one pass over the rows, instead of a read and a write.
        Written for SQLite, where the reconciler runs; PostgreSQL would want the VALUES columns
        cast to the agreements' types."""
        changes, page.changes = page.changes, []
        applied: set[str] = set()
        for i in range(0, len(changes), _CHUNK):
            chunk = changes[i : i + _CHUNK]
            try:
                rows = await self._db.all(
                    "UPDATE agreements SET status=v.column1, version=version+1, user_type=v.column2,"
                    " recharge_threshold=v.column3, recharge_amount=v.column4, auto_pay=v.column5, updated_at=?"
                    f" FROM (VALUES {','.join(['(?,?,?,?,?,?,?)'] * len(chunk))}) AS v"
                    " WHERE agreements.agreement_id=v.column6 AND agreements.version=v.column7"
                    " RETURNING agreements.agreement_id", (page.at, *(x for row in chunk for x in row)),
                )  # fmt: skip
            except UniqueViolation as exc:
                raise Conflict("phone", None) from exc
            applied.update(r[0] for r in rows)
        return applied

    async def write(self, page: Page) -> None:
        """The page's new agreements, then the history row and timeline event of every correction."""
        if page.inserts:
            cols = list(page.inserts[0])
            try:
                await self._db.many(
                    f"INSERT INTO agreements ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [tuple(r[c] for c in cols) for r in page.inserts],
                )  # fmt: skip
            except UniqueViolation as exc:
                raise Conflict("phone", None) from exc
        if page.histories:
            await self._db.many(
                "INSERT INTO agreement_history (agreement_id, version, at, source, message_id, change, before,"
                " after) VALUES (?,?,?,?,?,?,?,?)", page.histories,
            )  # fmt: skip
            await self._db.many(
                "INSERT INTO events (at, agreement_id, flow_key, event, party, message_id, detail)"
                " VALUES (?,?,?,?,?,?,?)", page.events,
            )  # fmt: skip


@dataclass(slots=True)
class Page:
    """The rows one unit of work of corrections writes, made at `at` (every correction of a page
    is made at the same moment)."""

    message_id: str
    at: str
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    inserts: list[dict[str, Any]] = field(default_factory=list)
    histories: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def change(self, agreement_id: str, expected_version: int, status: str, t: Terms) -> None:
        """A new version of an agreement, for `ReconRows.correct`."""
        self.changes.append((status, t.user_type, t.recharge_threshold, t.recharge_amount, int(t.auto_pay),
                             agreement_id, expected_version))  # fmt: skip

    def insert(self, row: dict[str, Any]) -> None:
        self.inserts.append(row | {"updated_at": self.at})

    def history(self, agreement_id: str, version: int, before: str | None, after: str, discrepancy: str,
                status: str) -> None:  # fmt: skip
        """The history row and the timeline event of one correction (`before`, `after`: its terms
        as `hub.store.rows.terms_of` keeps them, in JSON)."""
        self.histories.append(
            (agreement_id, version, self.at, SOURCE, self.message_id, "RECONCILE", before, after)
        )
        detail = (
            f'{{"discrepancy": "{discrepancy}", "version": {version}, "status": "{status}"}}'  # as json.dumps
        )
        self.events.append(
            (self.at, agreement_id, None, "agreement.reconciled", SOURCE, self.message_id, detail)
        )
