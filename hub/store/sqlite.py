"""The embedded store on SQLite (the standard sqlite3 module), WAL mode, one writer at a time.

Driver errors become the hub's own: a busy or failing database is `StoreBusy` (transient), a
unique-index violation is `Conflict`. Flows never see sqlite3.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from hub.agreements import Agreement, Case, SigningFlow
from hub.errors import Conflict, StoreBusy
from hub.sessions import SigningSession
from hub.store.dbapi import Db, Params, UniqueViolation
from hub.store.ops_rows import OpsRows
from hub.store.recon_rows import ReconRows
from hub.store.rows import agreement_to_row, flow_to_row, row_to_agreement, row_to_flow, terms_of, ts
from hub.store.schema import MIGRATIONS
from hub.store.session_rows import row_to_session, session_to_row
from hub.store.unit_of_work import DeadRecord, OutboxClaim, OutboxRow

T = TypeVar("T")
log = logging.getLogger("signhub.store")
# Often, so that what the final step copies under the lock stays small. At 123 flows/s, in runs of
# 6,000 flows, every 5 s gave a per-hop p99 of 24-32 ms and every 0.25 s 19 ms; runs of 10,000
# flows gave 22-23 ms (every 1 s) and 24-26 ms (every 0.25 s), within the spread between runs.
CHECKPOINT_EVERY_S = 0.25
WAL_KEEP_BYTES = 64 * 1024 * 1024
BULK_CACHE_KIB = 128 * 1024
# Confirmed outbox rows are marked sent by the next unit of work, in its transaction; when none
# comes within this time, by a transaction of their own (see SqliteStore.mark_sent).
MARK_WITHIN_S = 0.05


def outbox_row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row["id"], message_id=row["message_id"], target=row["target"], routing_key=row["routing_key"],
        type=row["type"], correlation_id=row["correlation_id"], body=bytes(row["body"]),
        headers=json.loads(row["headers"]),
    )  # fmt: skip


def case_of(row: Any) -> Case:
    return Case(
        case_id=row["case_id"], phone=row["phone"], new_agreement_id=row["new_agreement_id"],
        existing_agreement_id=row["existing_agreement_id"], flow_key=row["flow_key"],
        message_id=row["message_id"], sender=row["sender"], opened_at=datetime.fromisoformat(row["opened_at"]),
        source=row["source"], state=row["state"],
    )  # fmt: skip


class _Db:
    """Executes statements and translates driver errors (hub.store.dbapi.Db on SQLite).

    Statements of the message path run inline on the event loop: on indexed rows they take tens of
    microseconds, less than a hand-off to a driver thread and back (which, about ten times per
    message, was the hub's largest cost in the profile; bench/README.md). What may scan or wait
    for the disk runs on the store's one thread instead (`offloaded()`: reconciliation, housekeeping,
    ad-hoc queries; and every COMMIT, whose fsync is the slow part). The store's lock keeps the two
    from ever using the connection at the same time.
    """

    for_update = ""

    def __init__(self, conn: sqlite3.Connection, worker: ThreadPoolExecutor, *, offload: bool = False) -> None:
        self.conn = conn
        self._worker = worker
        self._offload = offload

    def offloaded(self) -> _Db:
        """The same connection with every statement run on the store's thread."""
        return _Db(self.conn, self._worker, offload=True)

    async def on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.on_thread(fn, *args) if self._offload else fn(*args)

    async def run(self, sql: str, params: Params = ()) -> int:
        return await self._call(self._run, sql, params)

    async def one(self, sql: str, params: Params = ()) -> Any:
        return await self._call(self._one, sql, params)

    async def all(self, sql: str, params: Params = ()) -> list[Any]:
        return await self._call(self._all, sql, params)

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(self._many, sql, rows)

    async def commit(self) -> None:
        await self.on_thread(self._run, "COMMIT", ())

    async def last_ids(self, n: int) -> list[int] | None:
        # Consecutive: the writer holds the only write transaction, and AUTOINCREMENT gives each
        # insert the highest id so far plus one.
        last = int(self.conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - n + 1, last + 1))

    def _run(self, sql: str, params: Params) -> int:
        try:
            return int(self.conn.execute(sql, params).rowcount)
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _one(self, sql: str, params: Params) -> Any:
        try:
            return self.conn.execute(sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _all(self, sql: str, params: Params) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from exc


class SqliteUnitOfWork:
    """One transaction's view of the store (see hub.store.unit_of_work.UnitOfWork)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def recon(self) -> ReconRows:
        """Reconciliation's files, held records and batch corrections, in this unit of work."""
        return ReconRows(self._db.offloaded())

    def ops(self) -> OpsRows:
        """The operations console's operators, sessions, claims, approvals and audit log."""
        return OpsRows(self._db)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db.offloaded().run(sql, params)

    async def step(self, sql: str) -> None:
        await self._db.run(sql)

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


def _checkpoint(conn: sqlite3.Connection) -> None:
    # Fetched, so the statement is finished: one left open makes the next COMMIT fail.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _create_private(path: Path) -> None:
    """Creates a new store file readable by its owner alone (0600) before SQLite opens it: SQLite
    creates its WAL and shared-memory files with the database file's mode, so they are private too.
    An existing file keeps its mode."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _read_only(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    conn.row_factory = sqlite3.Row
    return conn


class SqliteStore:
    """The store: units of work for flows, plus the relay's and the timers' queries."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signhub-store")
        self._db = _Db(conn, self._worker)
        self._slow = self._db.offloaded()
        # One writer at a time: SQLite allows no more, and the lock keeps waits in Python, not in
        # the driver's busy handler. It also keeps the event loop and the store's thread from
        # using the connection at once.
        self._lock = asyncio.Lock()
        self.synchronous = "FULL"
        self._closed = False
        self.relay_rounds = 64  # a claim holds nothing here, so rounds waiting for confirms cost little
        # The relay reads the outbox on its own connection: a WAL reader sees committed rows only
        # and needs neither the lock nor to wait for a group being committed.
        self._reader: sqlite3.Connection | None = None
        self._claimed_high = 0  # the relay's claims (see claim_outbox)
        self._checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signhub-checkpoint")
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointed = time.monotonic()
        self._checkpointing = False
        self._finish_checkpoint = False
        self._returned: set[int] = set()
        self._marks: dict[int, str] = {}  # confirmed rows not yet marked sent: id -> sent_at
        self._marks_due: asyncio.TimerHandle | None = None
        self._marking: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, path: str | Path, *, synchronous: str = "FULL") -> SqliteStore:
        if str(path) != ":memory:":
            _create_private(Path(path))
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_now_and_then
        conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")  # a WAL started over shrinks to this
        store = cls(conn)
        store.synchronous = synchronous
        await store._slow.on_thread(store._migrate)
        if str(path) != ":memory:":  # a second connection to ":memory:" would be another database
            store._reader = _read_only(path)
            store._checkpointer = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        return store

    def _migrate(self) -> None:
        conn = self._db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = (row[0] if row else None) or 0
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.executescript(f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({number});\nCOMMIT;")

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqliteUnitOfWork]:
        async with self._lock:
            if self._finish_checkpoint:
                await self._finish_checkpoint_under_lock()
            await self._db.run("BEGIN IMMEDIATE")
            try:
                marks = self._write_marks()
            except sqlite3.Error as exc:  # only the statement is undone; the marks are kept for later
                log.warning("could not mark outbox rows sent: %r", exc)
                marks = {}
            try:
                yield SqliteUnitOfWork(self._db)
            except BaseException:
                self._db.conn.execute("ROLLBACK")
                self._keep_marks(marks)
                raise
            try:
                await self._db.commit()
            except StoreBusy:
                self._db.conn.execute("ROLLBACK")
                self._keep_marks(marks)
                raise
        self._checkpoint_now_and_then()

    def _checkpoint_now_and_then(self) -> None:
        """WAL checkpoints in two steps (automatic checkpoints are off, so that no statement run
        inline on the event loop ever checkpoints). At most every CHECKPOINT_EVERY_S, a PASSIVE
        checkpoint on its own connection and thread copies the WAL into the database file without
        the store's lock: inside a commit, that copy held every group behind it. Writers go on
        meanwhile, so it never catches up with them, and SQLite starts the WAL over only after a
        checkpoint that did; so the next unit of work first finishes it under the lock (only what
        was written meanwhile is left to copy), and the WAL is reused from its start. No new
        checkpoint starts before that step has run: one running beside it made it give up (busy),
        and the WAL then went on growing (tests/integration/test_store.py)."""
        now = time.monotonic()
        if (self._checkpointer is None or self._checkpointing or self._finish_checkpoint
                or now - self._checkpointed < CHECKPOINT_EVERY_S):  # fmt: skip
            return
        self._checkpointed, self._checkpointing = now, True
        future = self._checkpoints.submit(_checkpoint, self._checkpointer)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: Future[Any]) -> None:
        self._checkpointing = False
        if future.exception() is not None:  # the next one retries; the WAL only grows meanwhile
            log.warning("WAL checkpoint failed: %r", future.exception())
        else:
            self._finish_checkpoint = True

    async def _finish_checkpoint_under_lock(self) -> None:
        self._finish_checkpoint = False
        try:
            await self._slow.on_thread(_checkpoint, self._db.conn)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %r", exc)

    @asynccontextmanager
    async def bulk_work(self) -> AsyncIterator[None]:
        """A larger page cache while a reconciliation writes its corrections, then the usual one
        again: at 10 million agreements 128 MB cut the corrections from 34.5 to 27.7 s, but kept
        all the time it would grow the hub's memory with its database (bench/recon.py)."""
        async with self._lock:
            usual = self._db.conn.execute("PRAGMA cache_size").fetchone()[0]
            self._db.conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            async with self._lock:
                self._db.conn.execute(f"PRAGMA cache_size={int(usual)}")
                self._db.conn.execute("PRAGMA shrink_memory")

    @asynccontextmanager
    async def claim_outbox(self, limit: int, skip: Collection[int] = ()) -> AsyncIterator[OutboxClaim]:
        """The oldest unsent rows for the relay (one relay per SQLite store: nothing to lock).

        Rows are read past the highest id claimed so far, plus the claimed rows that came back
        unmarked (a failed publish or round), so a claim never rereads the rows other rounds have
        in flight. That is sound here: ids only grow (AUTOINCREMENT) and SQLite has one writer at
        a time, so ids become visible in order; a fresh store starts from zero and so publishes
        whatever an earlier process left unsent."""
        again = sorted(i for i in self._returned if i not in skip)[:limit]
        rows = await self._read_unsent("id IN (" + ",".join("?" * len(again)) + ")", again) if again else []
        rows += await self._read_unsent("id > ?", (self._claimed_high,), limit - len(rows))
        ids = {r.id for r in rows if r.id is not None}
        self._returned -= ids | set(again)  # (one marked sent meanwhile is not read again: forget it)
        self._claimed_high = max([self._claimed_high, *ids])
        async with self._claim(rows) as claim:
            yield claim

    def claim_committed(self, rows: Sequence[OutboxRow]) -> AbstractAsyncContextManager[OutboxClaim] | None:
        """Rows a unit of work has just committed, for the relay without reading them back, when
        they are exactly the next ones past the highest id claimed (else None, and a claim reads
        them: a gap means rows of another writer nobody has claimed yet)."""
        ids = sorted(r.id for r in rows if r.id is not None)
        if not ids or len(ids) != len(rows) or ids != list(range(self._claimed_high + 1, ids[-1] + 1)):
            return None
        self._claimed_high = ids[-1]
        return self._claim(sorted(rows, key=lambda r: r.id or 0))

    @asynccontextmanager
    async def _claim(self, rows: list[OutboxRow]) -> AsyncIterator[OutboxClaim]:
        ids = {r.id for r in rows if r.id is not None}
        marked: set[int] = set()

        async def mark(done: Sequence[int], now: datetime) -> None:
            await self.mark_sent(done, now)
            marked.update(done)

        try:
            yield OutboxClaim(rows, mark)
        finally:
            self._returned |= ids - marked

    async def _read_unsent(self, where: str, params: Sequence[Any], limit: int = -1) -> list[OutboxRow]:
        sql = f"SELECT * FROM outbox WHERE sent_at IS NULL AND {where} ORDER BY id LIMIT ?"
        if self._reader is not None:
            try:
                found = self._reader.execute(sql, (*params, limit)).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreBusy(str(exc)) from exc
        else:
            async with self._lock:
                found = await self._db.all(sql, (*params, limit))
        return [outbox_row(r) for r in found]

    async def unsent(self, limit: int) -> list[OutboxRow]:
        rows = await self._read_unsent("1", (), limit + len(self._marks))
        return [r for r in rows if r.id not in self._marks][:limit]

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        """Rows the broker confirmed. The mark rides along with the next unit of work, written in
        its transaction, or, when none comes within MARK_WITHIN_S, gets a transaction of its own:
        at light traffic a transaction per relay round was a tenth of the hub's work. Losing a
        mark (a crash first) only means publishing the row again under the same message_id; this
        process does not publish it twice (its claims go past the ids it took)."""
        if not ids:
            return
        stamp = str(ts(now))
        self._marks.update(dict.fromkeys(ids, stamp))
        if self._marks_due is None:
            self._marks_due = asyncio.get_running_loop().call_later(MARK_WITHIN_S, self._mark_alone)

    def _mark_alone(self) -> None:
        self._marks_due = None
        if self._marks and not self._closed:
            task = asyncio.create_task(self._write_marks_alone(), name="outbox-marks")
            self._marking.add(task)
            task.add_done_callback(self._marking.discard)

    async def _write_marks_alone(self) -> None:
        async with self._lock:
            if not self._marks or self._closed:
                return
            # Inline and without its own fsync: in WAL mode the next FULL commit syncs it along
            # with its own, and with automatic checkpoints off nothing here waits for the disk.
            await self._db.run("PRAGMA synchronous=NORMAL")
            try:
                self._write_marks()
            except Exception as exc:  # kept: the next unit of work or timer writes them
                log.warning("could not mark outbox rows sent: %r", exc)
            finally:
                await self._db.run(f"PRAGMA synchronous={self.synchronous}")

    def _write_marks(self) -> dict[int, str]:
        """Writes the pending marks (under the lock, in the caller's transaction or alone) and
        returns them, so that a transaction rolled back can keep them (`_keep_marks`)."""
        marks, self._marks = self._marks, {}
        by_stamp: dict[str, list[int]] = {}
        for row_id, stamp in marks.items():
            by_stamp.setdefault(stamp, []).append(row_id)
        try:
            for stamp, ids in by_stamp.items():
                for k in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
                    chunk = ids[k : k + 500]
                    self._db.conn.execute(
                        f"UPDATE outbox SET sent_at=? WHERE id IN ({','.join('?' * len(chunk))})", (stamp, *chunk)
                    )
        except sqlite3.Error:
            self._keep_marks(marks)
            raise
        return marks

    def _keep_marks(self, marks: dict[int, str]) -> None:
        self._marks = marks | self._marks
        if self._marks and self._marks_due is None and not self._closed:
            self._marks_due = asyncio.get_running_loop().call_later(MARK_WITHIN_S, self._mark_alone)

    async def due_sessions(self, now: datetime, limit: int) -> list[str]:
        """Open flow-1 sessions past their window, for the sweeper to expire."""
        async with self._lock:
            rows = await self._db.all(
                "SELECT session_id FROM signing_sessions WHERE state IN ('CREATED', 'ENTERED', 'AT_BANK')"
                " AND expires_at<=? ORDER BY expires_at LIMIT ?",
                (ts(now), limit),
            )
        return [r["session_id"] for r in rows]

    async def due_flows(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        async with self._lock:
            rows = await self._db.all(
                "SELECT bank, request_id FROM flows WHERE state='VERIFYING' AND deadline<=? ORDER BY deadline"
                " LIMIT ?",
                (ts(now), limit),
            )
        return [(r["bank"], r["request_id"]) for r in rows]

    async def counts(self) -> dict[str, int]:
        queries = {
            "agreements_active": "SELECT count(*) FROM agreements WHERE status='ACTIVE'",
            "cases_open": "SELECT count(*) FROM cases WHERE state='OPEN'",
            "dead_messages": "SELECT count(*) FROM dead_messages",
            "outbox_unsent": "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
            "flows": "SELECT count(*) FROM flows",
        }
        out: dict[str, int] = {}
        async with self._lock:
            for name, sql in queries.items():
                row = await self._slow.one(sql)
                out[name] = int(row[0])
            out["outbox_unsent"] = max(0, out["outbox_unsent"] - len(self._marks))  # sent, mark pending
        return out

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Read-only rows as dicts, for the CLI, the HTTP endpoints and tests."""
        async with self._lock:
            rows = await self._slow.all(sql, params)
        return [dict(r) for r in rows]

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        """Stores `value` under `key` unless one is there; returns the stored value."""
        async with self._lock:
            await self._slow.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
            )
            row = await self._db.one("SELECT value FROM meta WHERE key=?", (key,))
        return str(row["value"])

    async def close(self) -> None:
        if self._closed:
            return
        if self._marks_due is not None:
            self._marks_due.cancel()
        await self._write_marks_alone()
        self._closed = True
        async with self._lock:
            await self._slow.on_thread(self._db.conn.close)
            if self._reader is not None:
                self._reader.close()
        self._checkpoints.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._worker.shutdown(wait=True)
