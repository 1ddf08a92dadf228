"""The unit of work in SQL, once for both dialects: written against `hub.store.dbapi.Db`, whose
statements use `?` (or `:name`) placeholders; the PostgreSQL adapter translates them and appends
`FOR UPDATE` where a row read is then updated (`Db.for_update`). Each store opens the transaction
around it (hub.store.sqlite, hub.store.postgres)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from hub.agreements import Agreement, Case, SigningFlow
from hub.errors import Conflict
from hub.sessions import SigningSession
from hub.store.dbapi import Db, UniqueViolation
from hub.store.housekeeping_rows import HousekeepingRows
from hub.store.ops_rows import OpsRows
from hub.store.recon_rows import ReconRows
from hub.store.rows import (
    agreement_to_row,
    case_of,
    flow_to_row,
    outbox_row,
    row_to_agreement,
    row_to_flow,
    terms_of,
    ts,
)
from hub.store.session_rows import row_to_session, session_to_row
from hub.store.unit_of_work import DeadRecord, OutboxRow


class SqlUnitOfWork:
    """One transaction's view of the store (see hub.store.unit_of_work.UnitOfWork), on any `Db`."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def recon(self) -> ReconRows:
        """Reconciliation's files, held records and batch corrections, in this unit of work."""
        return ReconRows(self._db.offloaded())

    def ops(self) -> OpsRows:
        """The operations console's operators, sessions, claims, approvals and audit log."""
        return OpsRows(self._db)

    def housekeeping(self) -> HousekeepingRows:
        """Pruning and re-encryption, on the store's thread (they may scan)."""
        return HousekeepingRows(self._db.offloaded())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db.offloaded().run(sql, params)

    async def savepoint(self) -> None:
        await self._db.run("SAVEPOINT message")

    async def release_savepoint(self) -> None:
        await self._db.run("RELEASE SAVEPOINT message")

    async def rollback_to_savepoint(self) -> None:
        await self._db.run("ROLLBACK TO SAVEPOINT message")
        await self._db.run("RELEASE SAVEPOINT message")

    async def seen(self, sender: str, message_id: str) -> bool:
        row = await self._db.one("SELECT 1 FROM inbox WHERE sender=? AND message_id=?", (sender, message_id))
        return row is not None

    async def remember(self, sender: str, message_id: str, msg_type: str, now: datetime) -> None:
        await self._db.run(
            "INSERT INTO inbox (sender, message_id, type, received_at) VALUES (?,?,?,?)",
            (sender, message_id, msg_type, ts(now)),
        )

    async def flow(self, bank: str, request_id: str) -> SigningFlow | None:
        row = await self._db.one(
            "SELECT * FROM flows WHERE flow_key=?" + self._db.for_update, (f"{bank}|{request_id}",)
        )
        return None if row is None else row_to_flow(row)

    async def flow_by_verify_id(self, verify_id: str) -> SigningFlow | None:
        row = await self._db.one("SELECT * FROM flows WHERE verify_id=?" + self._db.for_update, (verify_id,))
        return None if row is None else row_to_flow(row)

    async def save_flow(self, flow: SigningFlow, now: datetime) -> None:
        row = flow_to_row(flow) | {"updated_at": ts(now)}
        await self._db.run(
            "INSERT INTO flows (flow_key, bank, request_id, phone, verify_id, state, deadline, data,"
            " created_at, updated_at) VALUES (:flow_key, :bank, :request_id, :phone, :verify_id, :state,"
            " :deadline, :data, :created_at, :updated_at) ON CONFLICT (flow_key) DO UPDATE SET"
            " verify_id=excluded.verify_id, state=excluded.state, deadline=excluded.deadline,"
            " data=excluded.data, updated_at=excluded.updated_at",
            row,
        )

    async def agreement(self, agreement_id: str) -> Agreement | None:
        row = await self._db.one("SELECT * FROM agreements WHERE agreement_id=?", (agreement_id,))
        return None if row is None else row_to_agreement(row)

    async def active_agreement(self, phone: str) -> Agreement | None:
        row = await self._db.one("SELECT * FROM agreements WHERE phone=? AND status='ACTIVE'", (phone,))
        return None if row is None else row_to_agreement(row)

    async def insert_agreement(self, agreement: Agreement) -> None:
        row = agreement_to_row(agreement)
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        # A savepoint keeps the surrounding transaction usable after the violation.
        await self._db.run("SAVEPOINT insert_agreement")
        try:
            await self._db.run(f"INSERT INTO agreements ({cols}) VALUES ({marks})", row)
        except UniqueViolation as exc:
            await self._db.run("ROLLBACK TO SAVEPOINT insert_agreement")
            await self._db.run("RELEASE SAVEPOINT insert_agreement")
            raise await self._conflict(agreement) from exc
        await self._db.run("RELEASE SAVEPOINT insert_agreement")

    async def _conflict(self, agreement: Agreement) -> Conflict:
        row = await self._db.one(
            "SELECT agreement_id FROM agreements WHERE bank=? AND bank_agreement_no=?",
            (agreement.bank, agreement.bank_agreement_no),
        )
        if row is not None:
            return Conflict("bank_agreement_no", row["agreement_id"])
        active = await self.active_agreement(agreement.phone)
        return Conflict("phone", None if active is None else active.agreement_id)

    async def agreement_by_bank_no(self, bank: str, bank_agreement_no: str) -> Agreement | None:
        row = await self._db.one(
            "SELECT * FROM agreements WHERE bank=? AND bank_agreement_no=?", (bank, bank_agreement_no)
        )
        return None if row is None else row_to_agreement(row)

    async def latest_agreement(self, phone: str, province: str) -> Agreement | None:
        row = await self._db.one(
            "SELECT * FROM agreements WHERE phone=? AND province=? AND status IN ('ACTIVE', 'CANCELLED')"
            " ORDER BY status='ACTIVE' DESC, updated_at DESC LIMIT 1",
            (phone, province),
        )
        return None if row is None else row_to_agreement(row)

    async def update_agreement(self, after: Agreement, expected_version: int) -> None:
        row = agreement_to_row(after)
        sets = ", ".join(f"{c}=:{c}" for c in row if c != "agreement_id")
        try:
            changed = await self._db.run(
                f"UPDATE agreements SET {sets} WHERE agreement_id=:agreement_id AND version=:expected",
                row | {"expected": expected_version},
            )
        except UniqueViolation as exc:
            raise Conflict("phone", None) from exc
        if changed != 1:
            raise Conflict("version", after.agreement_id)

    async def record_change(
        self, before: Agreement | None, after: Agreement, *, source: str, message_id: str | None,
        change: str, now: datetime,
    ) -> None:  # fmt: skip
        await self._db.run(
            "INSERT INTO agreement_history (agreement_id, version, at, source, message_id, change, before, after)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (after.agreement_id, after.version, ts(now), source, message_id, change,
             None if before is None else json.dumps(terms_of(before)), json.dumps(terms_of(after))),
        )  # fmt: skip

    async def history(self, agreement_id: str) -> list[dict[str, Any]]:
        rows = await self._db.all(
            "SELECT * FROM agreement_history WHERE agreement_id=? ORDER BY version, id", (agreement_id,)
        )
        return [dict(r) for r in rows]

    async def case(self, case_id: str) -> Case | None:
        row = await self._db.one("SELECT * FROM cases WHERE case_id=?" + self._db.for_update, (case_id,))
        return None if row is None else case_of(row)

    async def open_case_for(self, agreement_id: str) -> Case | None:
        row = await self._db.one(
            "SELECT * FROM cases WHERE new_agreement_id=? AND state='OPEN'", (agreement_id,)
        )
        return None if row is None else case_of(row)

    async def close_case(self, case_id: str, state: str, *, by: str, reason: str, now: datetime) -> None:
        await self._db.run(
            "UPDATE cases SET state=?, resolution=?, resolved_by=?, resolved_at=?, reason=? WHERE case_id=?",
            (state, state, by, ts(now), reason, case_id),
        )

    async def session(self, session_id: str) -> SigningSession | None:
        row = await self._db.one(
            "SELECT * FROM signing_sessions WHERE session_id=?" + self._db.for_update, (session_id,)
        )
        return None if row is None else row_to_session(row)

    async def save_session(self, session: SigningSession, now: datetime) -> None:
        await self._db.run(
            "INSERT INTO signing_sessions (session_id, hall, bank, phone, province, state, expires_at, data,"
            " created_at, updated_at) VALUES (:session_id, :hall, :bank, :phone, :province, :state,"
            " :expires_at, :data, :created_at, :updated_at) ON CONFLICT (session_id) DO UPDATE SET"
            " state=excluded.state, data=excluded.data, updated_at=excluded.updated_at",
            session_to_row(session) | {"updated_at": ts(now)},
        )

    async def set_sync(self, agreement_id: str, side: str, value: str) -> None:
        column = {"crm": "crm_synced", "boss": "boss_synced"}[side]
        await self._db.run(f"UPDATE agreements SET {column}=? WHERE agreement_id=?", (value, agreement_id))

    async def open_case(self, case: Case, original_encrypted: str) -> None:
        await self._db.run(
            "INSERT INTO cases (case_id, phone, new_agreement_id, existing_agreement_id, flow_key,"
            " message_id, sender, source, state, opened_at, original_enc) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (case.case_id, case.phone, case.new_agreement_id, case.existing_agreement_id, case.flow_key,
             case.message_id, case.sender, case.source, case.state, ts(case.opened_at), original_encrypted),
        )  # fmt: skip

    async def record_dead(self, record: DeadRecord) -> None:
        await self._db.run(
            "INSERT INTO dead_messages (dead_id, sender, message_id, routing_key, type, reason, error,"
            " properties, original_enc, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (record.dead_id, record.sender, record.message_id, record.routing_key, record.type,
             record.reason, record.error, json.dumps(record.properties, default=str),
             record.original_encrypted, ts(record.received_at)),
        )  # fmt: skip

    async def set_dead_state(self, dead_id: str, state: str) -> None:
        await self._db.run("UPDATE dead_messages SET state=? WHERE dead_id=?", (state, dead_id))

    async def add_outbox(self, rows: Sequence[OutboxRow], now: datetime) -> list[OutboxRow]:
        if not rows:
            return []
        await self._db.many(
            "INSERT INTO outbox (message_id, target, routing_key, type, correlation_id, body, headers,"
            " created_at) VALUES (?,?,?,?,?,?,?,?)",
            [(r.message_id, r.target, r.routing_key, r.type, r.correlation_id, r.body,
              json.dumps(r.headers), ts(now)) for r in rows],
        )  # fmt: skip
        ids = await self._db.last_ids(len(rows))
        return list(rows) if ids is None else [replace(r, id=i) for r, i in zip(rows, ids, strict=True)]

    async def answers_to(self, correlation_id: str) -> list[OutboxRow]:
        rows = await self._db.all(
            "SELECT * FROM outbox WHERE correlation_id=? AND target='party' ORDER BY id", (correlation_id,)
        )
        return [outbox_row(r) for r in rows]

    async def correlation_of(self, message_id: str) -> str | None:
        row = await self._db.one(
            "SELECT correlation_id FROM outbox WHERE message_id=? LIMIT 1", (message_id,)
        )
        return None if row is None else row["correlation_id"]

    async def add_event(
        self, now: datetime, event: str, *, agreement_id: str | None = None, flow_key: str | None = None,
        party: str | None = None, message_id: str | None = None, detail: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        await self._db.run(
            "INSERT INTO events (at, agreement_id, flow_key, event, party, message_id, detail)"
            " VALUES (?,?,?,?,?,?,?)",
            (ts(now), agreement_id, flow_key, event, party, message_id, json.dumps(detail or {})),
        )
