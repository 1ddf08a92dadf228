"""Four-eyes, the proposing half: an action that needs a second operator (a REPLACE resolution,
an edited replay) is recorded as a proposal, which `hub.console.approvals` decides. Cases and
dead letters propose through this module; approvals carries proposals out through them.

One pending proposal per target (a partial unique index). The proposal's payload (an edited body
may hold a card number) is kept encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from hub.console import audit
from hub.console.auth import Operator
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
