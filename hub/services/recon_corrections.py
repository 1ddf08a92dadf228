"""Applying a page of the bank's corrections to the hub, in one short unit of work.

Each correction is a new version with its history (source RECONCILIATION) and a timeline event.
What can be known from the comparison alone is prepared off the event loop (`plan`: the rows of a
new agreement, the history's before and after). The unit of work changes the agreements with one
statement per chunk that checks each version as it writes; only the corrections that make an
agreement ACTIVE read first (the numbers that are ACTIVE now, bank numbers recorded meanwhile),
after the page's cancellations, so a number freed in the page may take another agreement.

A correction whose agreement changed since the comparison read it is skipped (the later change
wins; the next file looks again). One that would give a number a second ACTIVE agreement holds
the agreement (PENDING_REVIEW) and opens a manual case, header `x-signhub-source: RECONCILIATION`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts import envelope as env
from contracts.common import AccountType, Channel, QueueReason, UserType
from hub.agreements import Account, Agreement, AgreementStatus, Case
from hub.flows.reconciliation import BankRecord, Correction, HubRecord, Terms
from hub.messaging.copies import queue_copy
from hub.outgoing import QueueCopy, Target
from hub.recon.records import bank_line
from hub.services.context import Deps
from hub.store.recon_rows import SOURCE, Page
from hub.store.rows import agreement_to_row, ts
from hub.store.unit_of_work import UnitOfWork

_ACTIVE = AgreementStatus.ACTIVE.value
_HELD = AgreementStatus.PENDING_REVIEW.value


@dataclass(frozen=True, slots=True)
class Planned:
    """One correction with what it writes, as far as the comparison alone tells (see `plan`)."""

    discrepancy: str
    agreement_id: str
    phone: str
    status: str
    terms: Terms
    version: int  # the version the correction makes
    before: str | None  # the history's terms before (the hub's version the comparison saw)
    after: str  # the history's terms after, for `status`
    record: BankRecord | None
    activates: bool  # it makes an agreement ACTIVE that was not (a new one, or one cancelled)
    new_row: dict[str, Any] | None = None  # the agreements row of a MISSING_AT_HUB

    @property
    def expected_version(self) -> int:
        return self.version - 1


def plan(deps: Deps, party: str, c: Correction, hub: HubRecord | None, now: datetime) -> Planned:
    """A correction prepared for `apply_batch` (pure but not free: for a worker thread)."""
    if c.agreement_id is None:
        assert c.bank_record is not None
        agreement = _agreement_of(deps, party, c.bank_record, now)
        return Planned(c.discrepancy, agreement.agreement_id, agreement.phone, c.status, c.terms, 1, None,
                       _terms_json(c.status, 1, c.terms), c.bank_record, c.status == _ACTIVE,
                       agreement_to_row(agreement))  # fmt: skip
    assert hub is not None and c.expected_version is not None
    version = c.expected_version + 1
    return Planned(c.discrepancy, c.agreement_id, hub.phone, c.status, c.terms, version,
                   _terms_json(hub.status, c.expected_version, hub.terms), _terms_json(c.status, version, c.terms),
                   c.bank_record, c.status == _ACTIVE and hub.status != _ACTIVE)  # fmt: skip


def _terms_json(status: str, version: int, t: Terms) -> str:
    """As `hub.store.rows.terms_of` keeps an agreement's version in its history."""
    return json.dumps({"status": status, "version": version, "user_type": t.user_type,
                       "recharge_threshold": t.recharge_threshold, "recharge_amount": t.recharge_amount,
                       "auto_pay": t.auto_pay})  # fmt: skip


@dataclass(slots=True)
class Batch:
    """What one unit of work applies, and what it queued for the manual queue."""

    party: str
    file_name: str
    message_id: str
    corrections: list[Planned]
    now: datetime
    out: list[QueueCopy] = field(default_factory=list)
    skipped: int = 0
    cases: int = 0


async def apply_batch(uow: UnitOfWork, deps: Deps, batch: Batch) -> None:
    rows = uow.recon()
    page = Page(batch.message_id, ts(batch.now) or "")
    # Changes that make no agreement ACTIVE first (cancellations free numbers): no number to check.
    moves = [p for p in batch.corrections if p.new_row is None and not p.activates]
    for p in moves:
        page.change(p.agreement_id, p.expected_version, p.status, p.terms)
    applied = await rows.correct(page)
    for p in moves:
        if p.agreement_id in applied:
            page.history(p.agreement_id, p.version, p.before, p.after, p.discrepancy, p.status)
    batch.skipped += len(moves) - len(applied)
    await _activate(uow, deps, batch, page)
    await rows.write(page)


async def _activate(uow: UnitOfWork, deps: Deps, batch: Batch, page: Page) -> None:
    """Corrections that make an agreement ACTIVE, each unless its number has another ACTIVE one."""
    rows = uow.recon()
    again = [p for p in batch.corrections if p.new_row is None and p.activates]
    new = [p for p in batch.corrections if p.new_row is not None]
    if not again and not new:
        return
    versions = await rows.versions([p.agreement_id for p in again])
    known = await rows.known_bank_numbers(batch.party.split(".", 1)[1],
                                          [p.record.bank_agreement_no for p in new if p.record])  # fmt: skip
    taken = await rows.active_of(sorted({p.phone for p in again + new}))
    for p in again:
        if versions.get(p.agreement_id) != p.expected_version:
            batch.skipped += 1
            continue
        status = await _unless_taken(uow, deps, batch, p, taken)
        page.change(p.agreement_id, p.expected_version, status, p.terms)
        page.history(p.agreement_id, p.version, p.before, _after(p, status), p.discrepancy, status)
    await rows.correct(page)  # their versions were read in this unit of work: all of them apply
    for p in new:
        assert p.record is not None and p.new_row is not None
        if p.record.bank_agreement_no in known:  # a signing recorded it since the comparison
            batch.skipped += 1
            continue
        status = await _unless_taken(uow, deps, batch, p, taken)
        page.insert(p.new_row | {"status": status})
        page.history(p.agreement_id, p.version, None, _after(p, status), p.discrepancy, status)


def _after(p: Planned, status: str) -> str:
    return p.after if status == p.status else _terms_json(status, p.version, p.terms)


def _agreement_of(deps: Deps, party: str, r: BankRecord, now: datetime) -> Agreement:
    """An agreement the bank has and the hub lacked. The file gives no full card number and no
    account type: the hub keeps the last 4 digits, no fingerprint, and DEBIT."""
    t = r.terms
    return Agreement(
        agreement_id=deps.new_id("A"), version=1, status=AgreementStatus(r.status), phone=r.phone,
        province=deps.segments.province_of(r.phone) or "", bank=party.split(".", 1)[1],
        bank_agreement_no=r.bank_agreement_no, account=Account("", r.account_last4, "", AccountType.DEBIT),
        user_type=UserType(t.user_type), recharge_threshold=t.recharge_threshold, recharge_amount=t.recharge_amount,
        auto_pay=t.auto_pay, channel=Channel.COUNTER, signed_at=r.signed_at, updated_at=now,
        flow_key=None, auto_pay_allowed=t.auto_pay,
    )  # fmt: skip


async def _unless_taken(uow: UnitOfWork, deps: Deps, batch: Batch, p: Planned, taken: dict[str, str]) -> str:
    """The status the agreement may be saved with: held in a case when its number has another
    ACTIVE agreement (in the store, or made ACTIVE earlier in this page)."""
    if p.status != _ACTIVE:
        return p.status
    existing = taken.get(p.phone)
    if existing is None or existing == p.agreement_id:
        taken[p.phone] = p.agreement_id
        return p.status
    await _open_case(uow, deps, batch, p, existing)
    return _HELD


async def _open_case(uow: UnitOfWork, deps: Deps, batch: Batch, held: Planned, existing: str) -> None:
    case = Case(case_id=deps.new_id("C"), phone=held.phone, new_agreement_id=held.agreement_id,
                existing_agreement_id=existing, flow_key=f"RECON|{batch.party}|{batch.file_name}",
                message_id=batch.message_id, sender=batch.party, opened_at=batch.now, source=SOURCE)  # fmt: skip
    record = held.record
    body = json.dumps({"file_name": batch.file_name, "record": bank_line(record) if record else None,
                       "agreement_id": held.agreement_id}).encode()  # fmt: skip
    await uow.open_case(case, deps.protector.encrypt(body))
    phone = held.phone
    batch.out.append(queue_copy(
        Target.MANUAL, raw_body=body, message_id=case.case_id, msg_type="recon.file", sender=batch.party,
        routing_key=f"{batch.party}.recon.file", reason=QueueReason.DUPLICATE_AGREEMENT.value,
        error=f"reconciliation: {phone[:3]}****{phone[-4:]} already has ACTIVE agreement {existing}",
        extra={env.H_CASE_ID: case.case_id, env.H_EXISTING_AGREEMENT_ID: existing, env.H_SOURCE: SOURCE},
    ))  # fmt: skip
    batch.cases += 1
    await uow.add_event(batch.now, "case.opened", agreement_id=held.agreement_id, party=SOURCE,
                        message_id=batch.message_id, detail={"case_id": case.case_id})  # fmt: skip
