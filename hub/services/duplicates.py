"""A confirmation that would give a number a second ACTIVE agreement, in either channel: the new
agreement is held (PENDING_REVIEW), a case opens and a masked copy goes to the manual queue."""

from __future__ import annotations

from dataclasses import replace

from contracts import envelope as env
from contracts.bank import SignConfirmed
from contracts.common import QueueReason, ReasonCode
from hub.agreements import Agreement, AgreementStatus, Case
from hub.errors import Conflict
from hub.flows import bank_signing as flow2
from hub.messaging.copies import queue_copy
from hub.outgoing import Target
from hub.services.context import Ctx


async def hold_duplicate(
    ctx: Ctx, msg: SignConfirmed, agreement: Agreement, flow_key: str, conflict: Conflict
) -> Agreement | None:
    """The held agreement, or None when the bank reused its agreement number (REQUEST_MISMATCH)."""
    if conflict.rule == "bank_agreement_no":
        ctx.out.append(
            flow2.reject_confirmation(ctx.sender, msg, ctx.message_id, ReasonCode.REQUEST_MISMATCH)
        )
        return None
    held = replace(agreement, status=AgreementStatus.PENDING_REVIEW)
    await ctx.uow.insert_agreement(held)
    case = Case(
        case_id=ctx.deps.new_id("C"), phone=agreement.phone, new_agreement_id=held.agreement_id,
        existing_agreement_id=conflict.existing_id or "", flow_key=flow_key, message_id=ctx.message_id,
        sender=str(ctx.sender), opened_at=ctx.now,
    )  # fmt: skip
    await ctx.uow.open_case(case, ctx.deps.protector.encrypt(ctx.raw_body))
    phone = agreement.phone
    ctx.out.append(queue_copy(
        Target.MANUAL, raw_body=ctx.raw_body, message_id=ctx.message_id, msg_type="sign.confirmed",
        sender=str(ctx.sender), routing_key=ctx.routing_key, reason=QueueReason.DUPLICATE_AGREEMENT.value,
        error=f"{phone[:3]}****{phone[-4:]} already has ACTIVE agreement {conflict.existing_id}",
        extra={env.H_CASE_ID: case.case_id, env.H_EXISTING_AGREEMENT_ID: conflict.existing_id or ""},
    ))  # fmt: skip
    await ctx.event("case.opened", agreement_id=held.agreement_id, flow_key=flow_key, case_id=case.case_id)
    return held
