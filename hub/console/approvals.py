"""Four-eyes: an action that needs a second operator (a REPLACE resolution, an edited replay) is
proposed first (`hub.console.proposals`) and takes effect only when another operator with the
approver role approves it; this module decides proposals and carries them out.

One pending proposal per target (a partial unique index); deciding is a conditional update, so
two approvers pressing at once approve once. The proposal's payload (an edited body may hold a
card number) is kept encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from hub.console import audit
from hub.console.auth import Operator, Role
from hub.console.cases import apply
from hub.console.context import Console
from hub.console.dead_letters import replay
from hub.flows.duplicates import Resolution
from hub.services.operations import OperationRefused


async def pending(console: Console) -> list[dict[str, Any]]:
    rows = await console.store.console().pending_approvals()
    return [r | {"preview": json.loads(r["preview"])} for r in rows]


async def decide(console: Console, op: Operator, approval_id: str, *, approve: bool, reason: str = ""
                 ) -> dict[str, Any]:  # fmt: skip
    """Approves (then carries out) or refuses a proposal. The proposer may withdraw their own but
    never approve it."""
    proposal = await console.store.console().approval(approval_id)
    if proposal is None or proposal["state"] != "PENDING":
        raise OperationRefused(f"no pending approval {approval_id}")
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
            await uow.ops().fail_approval(approval_id)
        raise
    return {"approval_id": approval_id, "state": state} | done


async def _carry_out(console: Console, proposal: dict[str, Any], *, approver: str) -> dict[str, Any]:
    if proposal["kind"] == "case.REPLACE":
        return await apply(console, proposal["target_id"], Resolution.REPLACE, by=proposal["proposed_by"],
                           reason=proposal["reason"], approved_by=approver)  # fmt: skip
    body = json.loads(console.deps.protector.decrypt(proposal["payload_enc"]))["body"]
    return await replay(console, proposal["proposed_by"], proposal["target_id"], body=body,
                        approved_by=approver)  # fmt: skip
