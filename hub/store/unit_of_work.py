"""The store's interface as flows and the relay see it; adapters (hub.store.sqlite, hub.store.postgres)
implement it, sharing the SQL of hub.store.sql_unit_of_work and of the read-side classes.

A unit of work is one transaction: it commits when its block ends without an exception and rolls
back otherwise, so an inbox record, a state change and its outbox rows land together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hub.agreements import Agreement, Case, SigningFlow
from hub.sessions import SigningSession
from hub.store.console_rows import ConsoleReads
from hub.store.housekeeping_rows import HousekeepingReads, HousekeepingRows
from hub.store.ops_rows import OpsRows
from hub.store.recon_reads import ReconFileReads
from hub.store.recon_rows import ReconRows
from hub.store.report_rows import ReportReads


@dataclass(frozen=True, slots=True)
class OutboxRow:
    message_id: str
    target: str  # hub.outgoing.Target value
    routing_key: str
    type: str
    correlation_id: str | None
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DeadRecord:
    dead_id: str
    sender: str | None
    message_id: str | None
    routing_key: str
    type: str | None
    reason: str
    error: str
    properties: dict[str, Any]
    original_encrypted: str
    received_at: datetime


@dataclass(slots=True)
class OutboxClaim:
    """Unsent outbox rows handed to one relay, and how to mark them sent."""

    rows: list[OutboxRow]
    mark_sent: Callable[[Sequence[int], datetime], Awaitable[None]]


class UnitOfWork(Protocol):
    def recon(self) -> ReconRows: ...
    def ops(self) -> OpsRows: ...
    def housekeeping(self) -> HousekeepingRows: ...
    async def seen(self, sender: str, message_id: str) -> bool: ...
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """A raw statement, for tests (the hub's own are named methods); returns the rows changed."""
        ...

    async def savepoint(self) -> None:
        """Marks where `rollback_to_savepoint` returns to: one message of a group."""
        ...

    async def release_savepoint(self) -> None:
        """Keeps what was written since `savepoint`."""
        ...

    async def rollback_to_savepoint(self) -> None:
        """Undoes what was written since `savepoint`, and ends it."""
        ...

    async def remember(self, sender: str, message_id: str, msg_type: str, now: datetime) -> None: ...
    async def flow(self, bank: str, request_id: str) -> SigningFlow | None: ...
    async def flow_by_verify_id(self, verify_id: str) -> SigningFlow | None: ...
    async def save_flow(self, flow: SigningFlow, now: datetime) -> None: ...
    async def agreement(self, agreement_id: str) -> Agreement | None: ...
    async def active_agreement(self, phone: str) -> Agreement | None: ...
    async def insert_agreement(self, agreement: Agreement) -> None:
        """Raises hub.errors.Conflict when the number already has an ACTIVE agreement
        (rule "phone") or the bank already used the bank_agreement_no (rule "bank_agreement_no")."""
        ...

    async def agreement_by_bank_no(self, bank: str, bank_agreement_no: str) -> Agreement | None: ...
    async def latest_agreement(self, phone: str, province: str) -> Agreement | None:
        """The number's ACTIVE agreement in that province, else its most recently changed one."""
        ...

    async def update_agreement(self, after: Agreement, expected_version: int) -> None:
        """Raises hub.errors.Conflict (rule "version") when another writer changed it first."""
        ...

    async def record_change(
        self, before: Agreement | None, after: Agreement, *, source: str, message_id: str | None,
        change: str, now: datetime,
    ) -> None: ...  # fmt: skip
    async def history(self, agreement_id: str) -> list[dict[str, Any]]: ...
    async def case(self, case_id: str) -> Case | None: ...
    async def open_case_for(self, agreement_id: str) -> Case | None: ...
    async def close_case(self, case_id: str, state: str, *, by: str, reason: str, now: datetime) -> None: ...
    async def session(self, session_id: str) -> SigningSession | None: ...
    async def save_session(self, session: SigningSession, now: datetime) -> None: ...
    async def set_sync(self, agreement_id: str, side: str, value: str) -> None: ...
    async def open_case(self, case: Case, original_encrypted: str) -> None: ...
    async def record_dead(self, record: DeadRecord) -> None: ...
    async def set_dead_state(self, dead_id: str, state: str) -> None: ...
    async def add_outbox(self, rows: Sequence[OutboxRow], now: datetime) -> list[OutboxRow]:
        """Queues the rows; returns them with their ids where the store can tell them at once."""
        ...

    async def answers_to(self, correlation_id: str) -> list[OutboxRow]:
        """Party messages the hub queued in answer to `correlation_id`, oldest first."""
        ...

    async def correlation_of(self, message_id: str) -> str | None:
        """The correlation_id of the hub's own message `message_id`, if the outbox has it."""
        ...

    async def add_event(
        self, now: datetime, event: str, *, agreement_id: str | None = None, flow_key: str | None = None,
        party: str | None = None, message_id: str | None = None, detail: dict[str, Any] | None = None,
    ) -> None: ...  # fmt: skip


class Store(Protocol):
    relay_rounds: int  # how many outbox-relay rounds may wait for the broker's confirms at once

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
    def bulk_work(self) -> AbstractAsyncContextManager[None]:
        """Around many units of work in a row (reconciliation's corrections): the store may use
        more memory for them meanwhile."""
        ...

    def claim_outbox(self, limit: int, skip: Collection[int] = ()) -> AbstractAsyncContextManager[OutboxClaim]:
        """Up to `limit` of the oldest unsent rows, leaving out the ids in `skip` (rows a round of
        this relay still has in flight)."""
        ...

    def claim_committed(self, rows: Sequence[OutboxRow]) -> AbstractAsyncContextManager[OutboxClaim] | None:
        """Rows a unit of work has just committed (with their ids), claimed for the relay without
        reading them back; None where the store cannot vouch that no other claim takes them."""
        ...

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None: ...
    async def due_flows(self, now: datetime, limit: int) -> list[tuple[str, str]]: ...
    async def due_sessions(self, now: datetime, limit: int) -> list[str]: ...
    async def counts(self) -> dict[str, int]: ...
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Read-only rows as dicts, for tests and the store's own read-side classes below."""
        ...

    def console(self) -> ConsoleReads:
        """What the operations console reads (its writes: `UnitOfWork.ops`)."""
        ...

    def reports(self) -> ReportReads:
        """An agreement's report and timeline sources; the demo's tallies."""
        ...

    def recon_files(self) -> ReconFileReads:
        """Reconciliation files and their outcomes (its writes: `UnitOfWork.recon`)."""
        ...

    def housekeeping(self) -> HousekeepingReads:
        """The tokens a key rotation re-encrypts (the writes: `UnitOfWork.housekeeping`)."""
        ...

    async def ping(self) -> None:
        """Raises unless the store answers a statement."""
        ...

    async def put_meta_if_absent(self, key: str, value: str) -> str: ...
    async def close(self) -> None: ...
