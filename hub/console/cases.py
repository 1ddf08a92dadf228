"""Manual cases (duplicate signings) as operators work them: list, look at one side by side, claim,
resolve. KEEP_EXISTING takes effect at once; REPLACE waits for a second operator's approval
(four-eyes, `hub.console.approvals`). Every action is in the audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from contracts import envelope as env
from contracts.masking import mask_body
from hub.console import audit
from hub.console.auth import Operator, Role, require
from hub.console.context import Console, header, log
from hub.console.proposals import propose
from hub.flows.duplicates import Resolution
from hub.protection import mask_digits_in_text
from hub.services.operations import OperationRefused, resolve_case
from hub.services.query import agreement_reports
from hub.store.rows import ts

STATES = ("OPEN", "PENDING_APPROVAL", "RESOLVED", "WITHDRAWN")


async def list_cases(console: Console, *, province: str | None = None, bank: str | None = None,
                     min_age_s: float | None = None, state: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    now = console.deps.clock()
    opened_by = str(ts(now - timedelta(seconds=min_age_s))) if min_age_s else None
    rows = await console.store.console().cases(province=province, bank=bank, opened_by=opened_by, state=state)
    return [r | {"waited_s": _waited(r, now)} for r in rows]


def _waited(row: dict[str, Any], now: datetime) -> int:
    return int((now - datetime.fromisoformat(row["opened_at"])).total_seconds())


async def case_page(console: Console, case_id: str) -> dict[str, Any]:
    """The case with the existing agreement and the incoming confirmation side by side (masked),
    both agreements' timelines, how long it has waited, its claim, pending approval and audit."""
    listed = await console.store.console().case_listed(case_id)
    raw = await console.store.console().case(case_id)
    if listed is None or raw is None:
        raise LookupError(f"no case {case_id}")
    case = listed | {"waited_s": _waited(listed, console.deps.clock()), "reason": raw["reason"],
                     "new_agreement_id": raw["new_agreement_id"],
                     "existing_agreement_id": raw["existing_agreement_id"]}  # fmt: skip
    now = console.deps.clock()
    existing = await agreement_reports(console.store, case["existing_agreement_id"], now)
    held = await agreement_reports(console.store, case["new_agreement_id"], now)
    return {
        "case": case,
        "incoming": _masked(console.deps.protector.decrypt(raw["original_enc"])),
        "existing": existing[0] if existing else None,
        "held": held[0] if held else None,
        "audit": await audit.entries(console.store, target=case_id),
    }


def _masked(original: bytes) -> Any:
    try:
        return mask_body(json.loads(original))
    except ValueError:
        return mask_digits_in_text(original.decode("utf-8", errors="replace"))


async def claim(console: Console, op: Operator, case_id: str, *, release: bool = False) -> dict[str, Any]:
    require(op, Role.OPERATOR)
    async with console.store.unit_of_work() as uow:
        case = await uow.case(case_id)
        if case is None or case.state != "OPEN":
            raise OperationRefused(f"case {case_id} is not open")
        held = await uow.ops().claim(case_id)
        holder = held["operator"] if held else None
        if holder not in (None, op.name) and not (release and op.role is Role.ADMIN):
            raise OperationRefused(f"case {case_id} is claimed by {holder}")
        await uow.ops().set_claim(case_id, None if release else op.name, console.now_ts())
    await audit.record(console.store, console.deps.clock(), op.name, "case.release" if release else "case.claim",
                       target=case_id, before={"claimed_by": holder},
                       after={"claimed_by": None if release else op.name})  # fmt: skip
    return {"case_id": case_id, "claimed_by": None if release else op.name}


async def resolve(console: Console, op: Operator, case_id: str, resolution: Resolution, reason: str
                  ) -> dict[str, Any]:  # fmt: skip
    """KEEP_EXISTING now; REPLACE proposed for a second operator's approval. The operator must hold
    the case's claim (an unclaimed case is claimed on the way)."""
    require(op, Role.OPERATOR)
    if not reason.strip():
        raise OperationRefused("a resolution needs a reason")
    claimant = await console.store.console().claimant(case_id)
    if claimant is not None and claimant != op.name:
        raise OperationRefused(f"case {case_id} is claimed by {claimant}")
    if claimant is None:
        await claim(console, op, case_id)
    if resolution is Resolution.REPLACE:
        return await propose(console, op, "case.REPLACE", case_id, reason, payload={}, preview={})
    return await apply(console, case_id, resolution, by=op.name, reason=reason, approved_by=None)


async def apply(console: Console, case_id: str, resolution: Resolution, *, by: str, reason: str,
                approved_by: str | None) -> dict[str, Any]:  # fmt: skip
    """Resolves the case (hub.services.operations), removes its copy from the manual queue, audits."""
    before = await console.store.console().case(case_id)
    why = reason if approved_by is None else f"{reason} (approved by {approved_by})"
    outcome = await resolve_case(console.store, console.deps, case_id, resolution, by=by, reason=why)
    removed = await console.remove_copy(console.deps.names.manual_queue,
                                        lambda m: header(m, env.H_CASE_ID) == case_id)  # fmt: skip
    async with console.store.unit_of_work() as uow:
        await uow.ops().set_claim(case_id, None, console.now_ts())
    after = {"state": "RESOLVED", "resolution": resolution.value, "sent": outcome.messages,
             "manual_copy_removed": removed}  # fmt: skip
    await audit.record(console.store, console.deps.clock(), approved_by or by, f"case.{resolution.value}",
                       target=case_id, reason=why, after=after,
                       before={k: before[k] for k in ("state", "resolution")} if before else None)  # fmt: skip
    ids = {"agreement_id": before["new_agreement_id"], "flow": before["flow_key"]} if before else {}
    log.info("case %s resolved %s by %s", case_id, resolution.value, by, extra=ids)
    return {"case_id": case_id, "state": "RESOLVED"} | after
