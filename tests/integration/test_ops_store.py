"""The console's store side on SQLite and PostgreSQL: operators and sessions, four-eyes proposals,
and the audit log that the store refuses to change and whose hash chain shows tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.fernet import Fernet

from contracts.topology import Names
from hub.console import approvals, audit, cases, dead_letters
from hub.console.auth import AuthRefused, Role, create_operator, operator_of, sign_in, sign_out
from hub.console.context import Console
from hub.flows.common import Timing
from hub.messaging.topology import HubNames
from hub.parties import Registry
from hub.protection import DataProtector
from hub.segments import SegmentTable
from hub.services.context import Deps
from hub.store.dbapi import UniqueViolation
from hub.store.postgres import PostgresStore
from hub.store.unit_of_work import Store
from tests.support.pg import fresh_database

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _raw(store: Store, sql: str) -> None:
    """A statement run straight on the driver, as someone with database access could."""
    db = getattr(store, "_db", None)
    if db is not None:
        await db.run(sql)
        return
    async with store._pool.acquire() as conn:  # type: ignore[attr-defined]
        await conn.execute(sql)


async def test_an_operator_signs_in_with_the_right_password_and_the_session_expires(store: Store) -> None:
    await create_operator(store, "alice", Role.OPERATOR, "correct horse battery", by="test", now=NOW)
    with pytest.raises(AuthRefused):
        await sign_in(store, "alice", "wrong password!", now=NOW, ttl=timedelta(hours=1))
    token = await sign_in(store, "alice", "correct horse battery", now=NOW, ttl=timedelta(hours=1))
    op = await operator_of(store, token, now=NOW + timedelta(minutes=59))
    assert op is not None and op.name == "alice" and op.role is Role.OPERATOR
    assert await operator_of(store, token, now=NOW + timedelta(minutes=61)) is None
    rows = await store.query("SELECT password_hash FROM operators WHERE name='alice'")
    assert rows[0]["password_hash"].startswith("$argon2id$")
    stored = await store.query("SELECT token_hash FROM operator_sessions")
    assert token not in {r["token_hash"] for r in stored}


async def test_signing_out_ends_the_session_and_names_are_unique(store: Store) -> None:
    await create_operator(store, "bob", Role.APPROVER, "another good one", by="test", now=NOW)
    with pytest.raises(AuthRefused):
        await create_operator(store, "bob", Role.VIEWER, "another good one", by="test", now=NOW)
    with pytest.raises(AuthRefused):
        await create_operator(store, "carol", Role.VIEWER, "short", by="test", now=NOW)
    token = await sign_in(store, "bob", "another good one", now=NOW, ttl=timedelta(hours=1))
    await sign_out(store, token)
    assert await operator_of(store, token, now=NOW) is None


async def test_a_target_has_at_most_one_pending_proposal(store: Store) -> None:
    row = {"approval_id": "AP1", "kind": "case.REPLACE", "target_id": "C1", "proposed_by": "alice", "reason": "r",
           "payload_enc": "x", "preview": "{}", "state": "PENDING", "proposed_at": "2026-03-01"}  # fmt: skip
    async with store.unit_of_work() as uow:
        await uow.ops().add_approval(row)
    with pytest.raises(UniqueViolation):
        async with store.unit_of_work() as uow:
            await uow.ops().add_approval(row | {"approval_id": "AP2"})
    async with store.unit_of_work() as uow:
        assert await uow.ops().decide("AP1", "APPROVED", "bob", "2026-03-01")
        assert not await uow.ops().decide("AP1", "APPROVED", "carol", "2026-03-01")


async def test_the_audit_log_is_chained_and_the_store_refuses_to_change_it(store: Store) -> None:
    for i in range(3):
        await audit.record(store, NOW, "alice", "case.claim", target=f"C{i}", before={"a": i}, after={"b": i})
    verdict = await audit.verify(store)
    assert verdict.ok and verdict.rows == 3
    rows = await audit.entries(store)
    assert rows[0]["prev_hash"] == audit.GENESIS and rows[1]["prev_hash"] == rows[0]["hash"]
    for sql in ("UPDATE audit_log SET reason='x' WHERE seq=2", "DELETE FROM audit_log WHERE seq=3"):
        with pytest.raises(Exception, match="append-only"):
            async with store.unit_of_work() as uow:
                await uow.execute(sql)
    assert (await audit.verify(store)).ok


async def test_a_row_changed_behind_the_stores_back_breaks_the_chain(store: Store) -> None:
    for i in range(4):
        await audit.record(store, NOW, "alice", "dead.discard", target=f"D{i}", reason="spam")
    if getattr(store, "_db", None) is not None:
        await _raw(store, "DROP TRIGGER audit_log_no_update")
    else:
        await _raw(store, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
    await _raw(store, "UPDATE audit_log SET actor='mallory' WHERE seq=2")
    verdict = await audit.verify(store)
    assert not verdict.ok and verdict.first_bad_seq == 2


async def test_postgres_refuses_truncating_the_audit_log() -> None:
    # PostgreSQL only: SQLite has no TRUNCATE (its DELETE trigger is tested above).
    async with fresh_database() as url:
        store = await PostgresStore.open(url)
        try:
            await audit.record(store, NOW, "alice", "case.claim")
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await _raw(store, "TRUNCATE audit_log")
        finally:
            await store.close()


def _console(store: Store) -> Console:
    names = Names("tops")
    deps = Deps(names, Registry.of(["ICBC"], ["GD"]), SegmentTable.from_rows({"138": "GD"}),
                DataProtector([Fernet.generate_key()]), Timing(timedelta(seconds=1), 1, timedelta(hours=1)),
                lambda prefix: prefix + "1", lambda: NOW)  # fmt: skip
    return Console(store, deps, HubNames(names), connection=None)  # type: ignore[arg-type]


async def test_the_consoles_lists_read_the_same_on_both_stores(store: Store) -> None:
    console = _console(store)
    async with store.unit_of_work() as uow:
        await uow.execute(
            "INSERT INTO dead_messages (dead_id, sender, message_id, routing_key, type, reason, error, properties,"
            " original_enc, received_at) VALUES ('D1', NULL, 'm1', 'bank.X.sign.request', NULL, 'UNKNOWN_SENDER',"
            " 'e', '{}', 'x', '2026-03-01')"
        )
    groups = await dead_letters.groups(console)
    assert groups == [{"reason": "UNKNOWN_SENDER", "sender": "", "count": 1, "oldest": "2026-03-01",
                       "newest": "2026-03-01"}]  # fmt: skip
    assert [
        d["dead_id"] for d in await dead_letters.listing(console, reason="UNKNOWN_SENDER", sender="")
    ] == ["D1"]
    assert (
        await cases.list_cases(console, province="GD", bank="ICBC", min_age_s=60, state="PENDING_APPROVAL")
        == []
    )
    assert await approvals.pending(console) == []
