"""Four-eyes: an action that needs a second operator (a REPLACE resolution, an edited replay) is
proposed first and takes effect only when another operator with the approver role approves it.

One pending proposal per target (a partial unique index); deciding is a conditional update, so
two approvers pressing at once approve once. The proposal's payload (an edited body may hold a
card number) is kept encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from hub.console import audit
from hub.console.auth import Operator, Role
from hub.console.context import Console
from hub.services.operations import OperationRefused
from hub.store.dbapi import UniqueViolation

KINDS = ("case.REPLACE", "dead.EDIT_REPLAY")


async def propose(console: Console, op: Operator, kind: str, target_id: str, reason: str, *,
                  payload: dict[str, Any], preview: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    if not reason.strip():
        raise OperationRefused("a proposal needs a reason")
    approval_id = console.deps.new_id("AP")
    row = {"approval_id": approval_id, "kind": kind, "target_id": target_id, "proposed_by": op.name,
           "reason": reason, "payload_enc": console.deps.protector.encrypt(json.dumps(payload).encode()),
           "preview": json.dumps(preview, ensure_ascii=False), "state": "PENDING",
           "proposed_at": console.now_ts()}  # fmt: skip
    try:
        async with console.store.unit_of_work() as uow:
            await uow.ops().add_approval(row)
    except UniqueViolation:
        raise OperationRefused(f"{target_id} already has a proposal waiting for approval") from None
    await audit.record(console.store, console.deps.clock(), op.name, f"{kind}.proposed", target=target_id,
                       reason=reason, after={"approval_id": approval_id, "preview": preview})  # fmt: skip
    return {"state": "PENDING_APPROVAL", "approval_id": approval_id, "target_id": target_id}


async def pending(console: Console) -> list[dict[str, Any]]:
    rows = await console.store.query(
        "SELECT approval_id, kind, target_id, proposed_by, reason, preview, proposed_at FROM approvals"
        " WHERE state='PENDING' ORDER BY proposed_at"
    )
    return [r | {"preview": json.loads(r["preview"])} for r in rows]


async def decide(console: Console, op: Operator, approval_id: str, *, approve: bool, reason: str = ""
                 ) -> dict[str, Any]:  # fmt: skip
    """Approves (then carries out) or refuses a proposal. The proposer may withdraw their own but
    never approve it."""
    rows = await console.store.query("SELECT * FROM approvals WHERE approval_id=?", (approval_id,))
    if not rows or rows[0]["state"] != "PENDING":
        raise OperationRefused(f"no pending approval {approval_id}")
    proposal = rows[0]
    own = proposal["proposed_by"] == op.name
    if approve and own:
        raise PermissionError("four-eyes: a proposal must be approved by another operator")
    if not (own and not approve) and not op.role.allows(Role.APPROVER):
        raise PermissionError(f"{op.name} is {op.role.value}; deciding a proposal needs approver")
    if not approve and not reason.strip():
        raise OperationRefused("refusing a proposal needs a reason")
    state = "APPROVED" if approve else "REFUSED"
    async with console.store.unit_of_work() as uow:
        if not await uow.ops().decide(approval_id, state, op.name, console.now_ts()):
            raise OperationRefused(f"approval {approval_id} was decided by someone else")
    await audit.record(console.store, console.deps.clock(), op.name, f"{proposal['kind']}.{state.lower()}",
                       target=proposal["target_id"], reason=reason or None,
                       before={"approval_id": approval_id, "state": "PENDING"},
                       after={"approval_id": approval_id, "state": state})  # fmt: skip
    if not approve:
        return {"approval_id": approval_id, "state": state}
    try:
        done = await _carry_out(console, proposal, approver=op.name)
    except OperationRefused:
        async with console.store.unit_of_work() as uow:
            await uow.execute("UPDATE approvals SET state='FAILED' WHERE approval_id=?", (approval_id,))
        raise
    return {"approval_id": approval_id, "state": state} | done


async def _carry_out(console: Console, proposal: dict[str, Any], *, approver: str) -> dict[str, Any]:
    # Imported here: cases and dead letters propose through this module.
    from hub.console.cases import apply
    from hub.console.dead_letters import replay
    from hub.flows.duplicates import Resolution

    if proposal["kind"] == "case.REPLACE":
        return await apply(console, proposal["target_id"], Resolution.REPLACE, by=proposal["proposed_by"],
                           reason=proposal["reason"], approved_by=approver)  # fmt: skip
    body = json.loads(console.deps.protector.decrypt(proposal["payload_enc"]))["body"]
    return await replay(console, proposal["proposed_by"], proposal["target_id"], body=body,
                        approved_by=approver)  # fmt: skip
