"""The store on a real SQLite file and on a real PostgreSQL database (the same tests run on both,
through the `store` fixture): schema, units of work, rules, queries.

Each test opens its own database (a file under tmp_path, or a fresh PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from contracts.common import AccountType
from hub.agreements import Account, AgreementStatus, FlowState
from hub.errors import Conflict
from hub.protection import DataProtector
from hub.store.schema import MIGRATIONS
from hub.store.sqlite import SqliteStore
from hub.store.unit_of_work import DeadRecord, OutboxRow, Store
from tests.support.data import CARD, ID_NO
from tests.support.outbox import unsent_ids
from tests.support.records import NOW, agreement, signing_flow

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "hub.db")
    try:
        yield opened
    finally:
        await opened.close()


def _row(message_id: str, correlation_id: str | None = None, target: str = "party") -> OutboxRow:
    return OutboxRow(message_id=message_id, target=target, routing_key="bank.ICBC.sign.response",
                     type="sign.response", correlation_id=correlation_id, body=b'{"x":1}',
                     headers={"h": message_id})  # fmt: skip


def _committed(db: Path, sql: str) -> list[tuple[object, ...]]:
    """What another connection sees: only committed data."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


# --- schema ----------------------------------------------------------------------------------


async def test_a_new_store_gets_every_table_and_reopening_it_migrates_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    first = await SqliteStore.open(db)
    async with first.unit_of_work() as uow:
        await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
    await first.close()

    again = await SqliteStore.open(db)
    try:
        tables = {r["name"] for r in await again.query("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"inbox", "outbox", "flows", "agreements", "cases", "dead_messages", "events"} <= tables
        versions = [r["version"] for r in await again.query("SELECT version FROM schema_version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        async with again.unit_of_work() as uow:
            assert await uow.seen("bank.ICBC", "m-1"), "reopening must keep the data"
    finally:
        await again.close()
    assert _committed(db, "PRAGMA journal_mode") == [("wal",)]


# --- units of work ---------------------------------------------------------------------------


async def test_a_unit_of_work_commits_only_when_its_block_ends(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    db = tmp_path / "hub.db"
    async with store.unit_of_work() as uow:
        await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
        await uow.add_outbox([_row("out-1", "m-1")], NOW)
        assert await uow.seen("bank.ICBC", "m-1"), "the unit of work sees its own writes"
        assert _committed(db, "SELECT count(*) FROM inbox") == [(0,)], "nothing is visible before the end"
        assert _committed(db, "SELECT count(*) FROM outbox") == [(0,)]

    assert _committed(db, "SELECT sender, message_id FROM inbox") == [("bank.ICBC", "m-1")]
    assert _committed(db, "SELECT message_id FROM outbox") == [("out-1",)]


async def test_a_unit_of_work_that_raises_leaves_no_inbox_and_no_outbox_rows(store: Store) -> None:
    with pytest.raises(RuntimeError, match="flow crashed"):
        async with store.unit_of_work() as uow:
            await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
            await uow.save_flow(signing_flow(), NOW)
            await uow.add_outbox([_row("out-1", "m-1")], NOW)
            raise RuntimeError("flow crashed")

    async with store.unit_of_work() as uow:
        assert not await uow.seen("bank.ICBC", "m-1")
        assert await uow.flow("ICBC", "R1") is None
    assert await unsent_ids(store) == {}
    assert (await store.counts())["flows"] == 0


async def test_a_store_stays_usable_after_a_rolled_back_unit_of_work(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.unit_of_work() as uow:
            await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
            raise RuntimeError("boom")

    async with store.unit_of_work() as uow:
        await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
    async with store.unit_of_work() as uow:
        assert await uow.seen("bank.ICBC", "m-1")


# --- agreements: one ACTIVE per phone, one per (bank, bank_agreement_no) ---------------------------


async def test_a_second_active_agreement_for_a_phone_is_a_conflict_naming_the_existing_one(
    store: Store,
) -> None:
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(agreement("A1"))

    async with store.unit_of_work() as uow:
        with pytest.raises(Conflict) as raised:
            await uow.insert_agreement(agreement("A2", bank="CCB"))
        assert (raised.value.rule, raised.value.existing_id) == ("phone", "A1")
        await uow.insert_agreement(agreement("A2", bank="CCB", status=AgreementStatus.PENDING_REVIEW))
        await uow.add_event(NOW, "case.opened", agreement_id="A2")

    rows = await store.query("SELECT agreement_id, status FROM agreements ORDER BY agreement_id")
    assert rows == [
        {"agreement_id": "A1", "status": "ACTIVE"},
        {"agreement_id": "A2", "status": "PENDING_REVIEW"},
    ]
    assert len(await store.query("SELECT * FROM events WHERE agreement_id='A2'")) == 1


async def test_a_conflict_inside_a_unit_of_work_keeps_the_writes_made_before_it(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(agreement("A1"))
    async with store.unit_of_work() as uow:
        await uow.remember("bank.CCB", "m-2", "sign.confirmed", NOW)
        with pytest.raises(Conflict):
            await uow.insert_agreement(agreement("A2", bank="CCB"))

    async with store.unit_of_work() as uow:
        assert await uow.seen("bank.CCB", "m-2")
        assert await uow.agreement("A2") is None


async def test_a_reused_bank_agreement_no_at_the_same_bank_is_a_conflict_naming_its_agreement(
    store: Store,
) -> None:
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(agreement("A1", bank_agreement_no="BA-9"))

    async with store.unit_of_work() as uow:
        with pytest.raises(Conflict) as raised:
            await uow.insert_agreement(agreement("A2", phone="13900139000", bank_agreement_no="BA-9"))
        assert (raised.value.rule, raised.value.existing_id) == ("bank_agreement_no", "A1")
        await uow.insert_agreement(agreement("A3", phone="13900139000", bank="CCB", bank_agreement_no="BA-9"))

    assert (await store.counts())["agreements_active"] == 2, "the same number at another bank is fine"


async def test_a_cancelled_agreement_does_not_block_a_new_active_one_for_the_phone(
    store: Store,
) -> None:
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(agreement("A1", status=AgreementStatus.CANCELLED))
        await uow.insert_agreement(agreement("A2"))

    async with store.unit_of_work() as uow:
        active = await uow.active_agreement("13800138000")
    assert active is not None and active.agreement_id == "A2"


async def test_an_agreement_round_trips_through_the_store(store: Store) -> None:
    made = agreement("A1", signed_at=NOW.astimezone(SHANGHAI), recharge_threshold=None, auto_pay=True)
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(made)

    async with store.unit_of_work() as uow:
        assert await uow.agreement("A1") == made
        assert await uow.agreement("A-missing") is None


# --- outbox ------------------------------------------------------------------------------------


async def test_outbox_rows_are_claimed_oldest_first_as_written_and_counted_unsent_until_marked(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.add_outbox([_row("out-1"), _row("out-2"), _row("out-3")], NOW)

    async with store.claim_outbox(10) as claim:
        unsent = claim.rows
    assert [r.message_id for r in unsent] == ["out-1", "out-2", "out-3"]
    assert unsent[0].body == b'{"x":1}' and unsent[0].headers == {"h": "out-1"}

    await store.mark_sent([unsent[0].id, unsent[2].id], NOW)  # type: ignore[list-item]
    await store.mark_sent([], NOW)

    assert (await store.counts())["outbox_unsent"] == 1


async def test_a_claim_skips_rows_in_flight_and_gets_back_the_rows_a_claim_left_unmarked(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.add_outbox([_row("out-1"), _row("out-2"), _row("out-3")], NOW)

    async with store.claim_outbox(2) as first:
        assert [r.message_id for r in first.rows] == ["out-1", "out-2"]
        in_flight = [r.id for r in first.rows if r.id is not None]
        async with store.claim_outbox(10, skip=in_flight) as second:
            assert [r.message_id for r in second.rows] == ["out-3"], "rows in flight are not claimed twice"
            await second.mark_sent([r.id for r in second.rows if r.id is not None], NOW)
        await first.mark_sent(in_flight[:1], NOW)  # out-2's publish failed: it stays unsent

    async with store.unit_of_work() as uow:
        await uow.add_outbox([_row("out-4")], NOW)
    async with store.claim_outbox(10) as third:
        assert [r.message_id for r in third.rows] == ["out-2", "out-4"], "the unmarked row comes back"
    assert list(await unsent_ids(store)) == ["out-2", "out-4"]


async def test_a_store_opened_again_claims_what_an_earlier_process_left_unsent(tmp_path: Path) -> None:
    first = await SqliteStore.open(tmp_path / "hub.db")
    try:
        async with first.unit_of_work() as uow:
            await uow.add_outbox([_row("out-1"), _row("out-2")], NOW)
        async with first.claim_outbox(10) as claim:
            await claim.mark_sent([claim.rows[1].id], NOW)  # type: ignore[list-item]
    finally:
        await first.close()

    again = await SqliteStore.open(tmp_path / "hub.db")
    try:
        async with again.claim_outbox(10) as claim:
            assert [r.message_id for r in claim.rows] == ["out-1"]
    finally:
        await again.close()


async def test_rows_just_committed_are_handed_to_the_relay_only_when_no_other_claim_can_take_them(
    sqlite_store: SqliteStore,
) -> None:
    async with sqlite_store.unit_of_work() as uow:
        first = await uow.add_outbox([_row("out-1"), _row("out-2")], NOW)
    assert [r.id for r in first] == [1, 2], "the ids the inserts got"
    handed = sqlite_store.claim_committed(first)
    assert handed is not None
    async with handed as claim:
        assert [r.message_id for r in claim.rows] == ["out-1", "out-2"]
        await claim.mark_sent([1], NOW)  # out-2's publish failed
    async with sqlite_store.claim_outbox(10) as again:
        assert [r.message_id for r in again.rows] == ["out-2"], "neither read twice nor lost"

    async with sqlite_store.unit_of_work() as uow:
        other = await uow.add_outbox([_row("out-3")], NOW)  # another writer's row, nobody claimed it
    async with sqlite_store.unit_of_work() as uow:
        mine = await uow.add_outbox([_row("out-4")], NOW)
    assert sqlite_store.claim_committed(mine) is None, "a gap before them: a claim reads both"
    async with sqlite_store.claim_outbox(10) as claim:
        assert [r.message_id for r in claim.rows] == ["out-2", "out-3", "out-4"], "out-2 is still unmarked"
    assert sqlite_store.claim_committed(other) is None, "already claimed by a read"
    assert sqlite_store.claim_committed([_row("out-5")]) is None, "rows without ids"


async def test_marks_are_written_with_the_next_unit_of_work_or_alone_soon_after(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    unsent = "SELECT message_id FROM outbox WHERE sent_at IS NULL ORDER BY id"
    async with sqlite_store.unit_of_work() as uow:
        rows = await uow.add_outbox([_row("out-1"), _row("out-2"), _row("out-3")], NOW)
    await sqlite_store.mark_sent([rows[0].id], NOW)  # type: ignore[list-item]
    assert (await sqlite_store.counts())["outbox_unsent"] == 2, "pending counts as sent"

    with pytest.raises(RuntimeError):  # a unit of work rolled back keeps the marks it took
        async with sqlite_store.unit_of_work() as uow:
            await uow.remember("bank.ICBC", "m-1", "sign.request", NOW)
            raise RuntimeError("the group failed")
    async with sqlite_store.unit_of_work() as uow:
        await uow.remember("bank.ICBC", "m-2", "sign.request", NOW)
    assert _committed(tmp_path / "hub.db", unsent) == [("out-2",), ("out-3",)], "committed with the next one"

    await sqlite_store.mark_sent([rows[1].id], NOW)  # type: ignore[list-item]
    assert _committed(tmp_path / "hub.db", unsent) == [("out-2",), ("out-3",)]
    deadline = time.monotonic() + 5  # no unit of work comes: the timer writes the mark alone
    while ("out-2",) in _committed(tmp_path / "hub.db", unsent):
        assert time.monotonic() < deadline, "the mark was not written alone within 5 s"
        await asyncio.sleep(0.01)
    assert _committed(tmp_path / "hub.db", unsent) == [("out-3",)]


async def test_the_wal_is_started_over_while_units_of_work_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints copy the WAL into the database file beside the writers; unless one of them then
    finishes under the store's lock, SQLite never starts the WAL over and it grows without end."""
    monkeypatch.setattr("hub.store.checkpoints.CHECKPOINT_EVERY_S", 0.0)
    store = await SqliteStore.open(tmp_path / "hub.db")
    body = b"x" * 20_000
    try:
        for n in range(300):  # about 6 MB written through the WAL
            async with store.unit_of_work() as uow:
                await uow.add_outbox([OutboxRow(f"out-{n}", "party", "bank.ICBC.sign.result", "sign.result",
                                                None, body)], NOW)  # fmt: skip
        wal = (tmp_path / "hub.db-wal").stat().st_size
        assert wal < 2_000_000, f"the WAL grew to {wal} bytes: it was never started over"
        assert len(await unsent_ids(store)) == 300
    finally:
        await store.close()


async def test_answers_to_finds_the_party_messages_correlated_to_a_message_oldest_first(
    store: Store,
) -> None:
    async with store.unit_of_work() as uow:
        await uow.add_outbox(
            [_row("ans-1", "m-1"), _row("other", "m-2"), _row("copy", "m-1", target="dead")], NOW
        )
        await uow.add_outbox([_row("ans-2", "m-1")], NOW)

    async with store.unit_of_work() as uow:
        assert [r.message_id for r in await uow.answers_to("m-1")] == ["ans-1", "ans-2"]
        assert await uow.answers_to("m-unknown") == []
        assert await uow.correlation_of("ans-2") == "m-1"
        assert await uow.correlation_of("nope") is None


# --- flows -------------------------------------------------------------------------------------


async def test_a_flow_round_trips_by_its_key_and_by_its_verify_id(store: Store) -> None:
    verifying = signing_flow(deadline=NOW.astimezone(SHANGHAI) + timedelta(seconds=30))
    approved = signing_flow(FlowState.APPROVED, request_id="R2", verify_id="V2")
    async with store.unit_of_work() as uow:
        await uow.save_flow(verifying, NOW)
        await uow.save_flow(approved, NOW)

    async with store.unit_of_work() as uow:
        assert await uow.flow("ICBC", "R1") == verifying
        assert await uow.flow("ICBC", "R2") == approved
        assert await uow.flow_by_verify_id("V2") == approved
        assert await uow.flow("CCB", "R1") is None and await uow.flow_by_verify_id("V9") is None


async def test_saving_a_flow_again_updates_it_in_place(store: Store) -> None:
    flow = signing_flow()
    async with store.unit_of_work() as uow:
        await uow.save_flow(flow, NOW)
    timed_out = replace(flow, state=FlowState.TIMED_OUT, asks=3, deadline=None, reason_code="CRM_TIMEOUT")
    async with store.unit_of_work() as uow:
        await uow.save_flow(timed_out, NOW + timedelta(seconds=90))

    async with store.unit_of_work() as uow:
        assert await uow.flow("ICBC", "R1") == timed_out
    assert (await store.counts())["flows"] == 1


async def test_due_flows_are_the_verifying_flows_past_their_deadline_earliest_first(
    store: Store,
) -> None:
    flows = [
        signing_flow(request_id="late", verify_id="V1", deadline=NOW - timedelta(seconds=5)),
        signing_flow(request_id="just", verify_id="V2", deadline=NOW.astimezone(SHANGHAI)),
        signing_flow(request_id="later", verify_id="V3", deadline=NOW + timedelta(milliseconds=1)),
        signing_flow(FlowState.APPROVED, request_id="approved", verify_id="V4"),
        signing_flow(FlowState.TIMED_OUT, request_id="closed", verify_id="V5"),
    ]
    async with store.unit_of_work() as uow:
        for flow in flows:
            await uow.save_flow(flow, NOW)

    assert await store.due_flows(NOW, 10) == [("ICBC", "late"), ("ICBC", "just")]
    assert await store.due_flows(NOW, 1) == [("ICBC", "late")]
    assert await store.due_flows(NOW - timedelta(hours=1), 10) == []


# --- no clear personal numbers at rest -------------------------------------------------------


async def test_the_database_files_never_contain_a_clear_card_or_id_number(tmp_path: Path) -> None:
    protector = DataProtector([Fernet.generate_key()])
    account = Account(protector.fingerprint(CARD), CARD[-4:], protector.encrypt(CARD), AccountType.DEBIT)
    store = await SqliteStore.open(tmp_path / "hub.db")
    try:
        async with store.unit_of_work() as uow:
            await uow.save_flow(signing_flow(account=account, id_encrypted=protector.encrypt(ID_NO)), NOW)
            await uow.insert_agreement(agreement("A1", account=account))
            await uow.record_dead(DeadRecord(
                dead_id="D1", sender="bank.ICBC", message_id="m-bad", routing_key="bank.ICBC.sign.request",
                type="sign.request", reason="INVALID_MESSAGE", error="phone: bad", properties={},
                original_encrypted=protector.encrypt(f'{{"account_no":"{CARD}","id_no":"{ID_NO}"}}'),
                received_at=NOW,
            ))  # fmt: skip
        async with store.unit_of_work() as uow:
            stored = await uow.agreement("A1")
    finally:
        await store.close()

    assert stored is not None and protector.decrypt(stored.account.encrypted) == CARD.encode()
    assert (tmp_path / "hub.db").exists()
    assert _files_containing(tmp_path, CARD.encode()) == [], "a clear card number is stored"
    assert _files_containing(tmp_path, ID_NO.encode()) == [], "a clear ID number is stored"


def _files_containing(directory: Path, needle: bytes) -> list[str]:
    """Every file of the database (main file, WAL, shared memory), scanned byte for byte."""
    return [f.name for f in directory.iterdir() if needle in f.read_bytes()]


# --- the store's files are its owner's alone ---------------------------------------------------


async def test_a_new_store_and_its_wal_are_readable_by_their_owner_alone(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    umask = os.umask(0o022)  # the usual umask, which leaves a file SQLite creates 0644
    try:
        store = await SqliteStore.open(db)
    finally:
        os.umask(umask)
    try:
        async with store.unit_of_work() as uow:
            await uow.insert_agreement(agreement("A1"))
        files = _modes(tmp_path)
    finally:
        await store.close()
    assert {"hub.db", "hub.db-wal", "hub.db-shm"} <= set(files), files
    assert files == dict.fromkeys(files, 0o600), {name: oct(mode) for name, mode in files.items()}


def _modes(directory: Path) -> dict[str, int]:
    return {f.name: stat.S_IMODE(f.stat().st_mode) for f in directory.iterdir()}
