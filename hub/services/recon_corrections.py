"""Applying a batch of the bank's corrections to the hub, in one short unit of work.

Each correction is a new version with its history (source RECONCILIATION) and a timeline event.
A correction whose agreement changed since the comparison read it is skipped (the later change
wins; the next file looks again). One that would give a number a second ACTIVE agreement holds
the agreement (PENDING_REVIEW) and opens a manual case, header `x-signhub-source: RECONCILIATION`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from contracts import envelope as env
from contracts.common import AccountType, Channel, QueueReason, UserType
from hub.agreements import Account, Agreement, AgreementStatus, Case
from hub.flows.reconciliation import BankRecord, Correction
from hub.messaging.copies import queue_copy
from hub.outgoing import QueueCopy, Target
from hub.recon.records import bank_line
from hub.services.context import Deps
from hub.store.recon_rows import SOURCE, ReconRows
from hub.store.unit_of_work import UnitOfWork


@dataclass(slots=True)
class Batch:
    """What one unit of work applies, and what it queued for the manual queue."""

    party: str
    file_name: str
    message_id: str
    corrections: list[Correction]
    now: datetime
    out: list[QueueCopy] = field(default_factory=list)
    skipped: int = 0
    cases: int = 0


async def apply_batch(uow: UnitOfWork, deps: Deps, batch: Batch) -> None:
    rows = uow.recon()
    changes = [c for c in batch.corrections if c.agreement_id is not None]
    current = await rows.agreements([c.agreement_id for c in changes if c.agreement_id is not None])
    taken = await rows.active_of(sorted({c.bank_record.phone for c in batch.corrections if c.bank_record}
                                        | {a.phone for a in current.values()}))  # fmt: skip
    saved: list[tuple[Agreement, Agreement, str]] = []
    # Cancellations first, so that a number freed in this batch may take another agreement.
    for c in sorted(changes, key=lambda c: c.status == "ACTIVE"):
        before = current.get(c.agreement_id or "")
        if before is None or before.version != c.expected_version:
            batch.skipped += 1
            continue
        after = _corrected(before, c, batch.now)
        after = await _unless_taken(uow, deps, batch, after, taken, c.bank_record)
        saved.append((before, after, c.discrepancy))
    await rows.save_changes(saved, batch.message_id, batch.now)
    await _create(uow, rows, deps, batch, taken)


def _corrected(before: Agreement, c: Correction, now: datetime) -> Agreement:
    t = c.terms
    return replace(before, status=AgreementStatus(c.status), user_type=UserType(t.user_type),
                   recharge_threshold=t.recharge_threshold, recharge_amount=t.recharge_amount, auto_pay=t.auto_pay,
                   version=before.version + 1, updated_at=now)  # fmt: skip


async def _create(uow: UnitOfWork, rows: ReconRows, deps: Deps, batch: Batch, taken: dict[str, str]) -> None:
    new = [c for c in batch.corrections if c.agreement_id is None and c.bank_record is not None]
    if not new:
        return
    known = await rows.known_bank_numbers(batch.party.split(".", 1)[1],
                                          [c.bank_record.bank_agreement_no for c in new if c.bank_record])  # fmt: skip
    created: list[tuple[Agreement, str]] = []
    for c in new:
        assert c.bank_record is not None
        if c.bank_record.bank_agreement_no in known:  # a signing recorded it since the comparison
            batch.skipped += 1
            continue
        agreement = await _unless_taken(uow, deps, batch, _agreement_of(deps, batch, c.bank_record), taken,
                                        c.bank_record)  # fmt: skip
        created.append((agreement, c.discrepancy))
    await rows.insert(created, batch.message_id, batch.now)


def _agreement_of(deps: Deps, batch: Batch, r: BankRecord) -> Agreement:
    """An agreement the bank has and the hub lacked. The file gives no full card number and no
    account type: the hub keeps the last 4 digits, no fingerprint, and DEBIT."""
    t = r.terms
    return Agreement(
        agreement_id=deps.new_id("A"), version=1, status=AgreementStatus(r.status), phone=r.phone,
        province=deps.segments.province_of(r.phone) or "", bank=batch.party.split(".", 1)[1],
        bank_agreement_no=r.bank_agreement_no, account=Account("", r.account_last4, "", AccountType.DEBIT),
        user_type=UserType(t.user_type), recharge_threshold=t.recharge_threshold, recharge_amount=t.recharge_amount,
        auto_pay=t.auto_pay, channel=Channel.COUNTER, signed_at=r.signed_at, updated_at=batch.now,
        flow_key=None, auto_pay_allowed=t.auto_pay,
    )  # fmt: skip


async def _unless_taken(uow: UnitOfWork, deps: Deps, batch: Batch, agreement: Agreement, taken: dict[str, str],
                        record: BankRecord | None) -> Agreement:  # fmt: skip
    """The agreement as it may be saved: held in a case when its number has another ACTIVE one."""
    if agreement.status is not AgreementStatus.ACTIVE:
        if taken.get(agreement.phone) == agreement.agreement_id:
            del taken[agreement.phone]
        return agreement
    existing = taken.get(agreement.phone)
    if existing is None or existing == agreement.agreement_id:
        taken[agreement.phone] = agreement.agreement_id
        return agreement
    held = replace(agreement, status=AgreementStatus.PENDING_REVIEW)
    await _open_case(uow, deps, batch, held, existing, record)
    return held


async def _open_case(uow: UnitOfWork, deps: Deps, batch: Batch, held: Agreement, existing: str,
                     record: BankRecord | None) -> None:  # fmt: skip
    case = Case(case_id=deps.new_id("C"), phone=held.phone, new_agreement_id=held.agreement_id,
                existing_agreement_id=existing, flow_key=f"RECON|{batch.party}|{batch.file_name}",
                message_id=batch.message_id, sender=batch.party, opened_at=batch.now, source=SOURCE)  # fmt: skip
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
