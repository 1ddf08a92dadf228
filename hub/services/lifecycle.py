"""The async shell of the agreement lifecycle: unsign and modify from a bank or from a CRM.

Each handler finds the agreement the message names, asks the pure decision, saves the new version
with its history (who, which message, when, before and after), answers the requester and tells
the other side.
"""

from __future__ import annotations

from dataclasses import replace

from contracts.bank import BankModifyRequest, BankUnsignRequest
from contracts.common import QueueReason, ReasonCode
from contracts.crm import CrmModifyRequest, CrmUnsignRequest
from hub.agreements import Agreement, AgreementStatus, FlowState
from hub.flows import modifying, unsigning
from hub.flows.changes import Applied, Verdict
from hub.flows.common import Refused
from hub.flows.duplicates import held_result
from hub.flows.modifying import NewTerms
from hub.services.context import Ctx


async def on_bank_unsign(ctx: Ctx, msg: BankUnsignRequest) -> None:
    current = await ctx.uow.agreement_by_bank_no(ctx.sender.code, msg.bank_agreement_no)
    verdict = unsigning.decide_unsign(current, phone=msg.phone, based_on=msg.agreement_version, now=ctx.now)
    ctx.out.append(unsigning.answer_bank(verdict, ctx.sender, msg.bank_agreement_no, ctx.message_id))
    if isinstance(verdict, Applied):
        await save_change(ctx, verdict, "UNSIGN")
        if verdict.before.status is AgreementStatus.PENDING_REVIEW:
            await _withdraw_case(ctx, verdict.after)
        else:
            ctx.out.append(unsigning.tell_crm(verdict.after, ReasonCode.CANCELLED_BY_SUBSCRIBER))


async def on_crm_unsign(ctx: Ctx, msg: CrmUnsignRequest) -> None:
    current = await _crm_target(ctx, msg.agreement_id, msg.phone)
    verdict = unsigning.decide_unsign(current, phone=msg.phone, based_on=msg.agreement_version, now=ctx.now)
    ctx.out.append(unsigning.answer_crm(verdict, ctx.sender, msg.phone, ctx.message_id))
    if isinstance(verdict, Applied):
        await save_change(ctx, verdict, "UNSIGN")
        ctx.out.append(unsigning.tell_bank(verdict.after, ReasonCode.CANCELLED_BY_SUBSCRIBER))


async def on_bank_modify(ctx: Ctx, msg: BankModifyRequest) -> None:
    current = await ctx.uow.agreement_by_bank_no(ctx.sender.code, msg.bank_agreement_no)
    verdict = _decide_modify(ctx, current, msg.phone, msg.agreement_version, _terms(msg))
    ctx.out.append(modifying.answer_bank(verdict, ctx.sender, msg.bank_agreement_no, ctx.message_id))
    if isinstance(verdict, Applied):
        await save_change(ctx, verdict, "MODIFY")
        ctx.out.append(modifying.tell_crm(verdict.after))


async def on_crm_modify(ctx: Ctx, msg: CrmModifyRequest) -> None:
    current = await _crm_target(ctx, msg.agreement_id, msg.phone)
    verdict = _decide_modify(ctx, current, msg.phone, msg.agreement_version, _terms(msg))
    ctx.out.append(modifying.answer_crm(verdict, ctx.sender, msg.phone, ctx.message_id))
    if isinstance(verdict, Applied):
        await save_change(ctx, verdict, "MODIFY")
        ctx.out.append(modifying.tell_bank(verdict.after))


def _terms(msg: BankModifyRequest | CrmModifyRequest) -> NewTerms:
    return NewTerms(msg.recharge_threshold, msg.recharge_amount, msg.auto_pay)


def _decide_modify(
    ctx: Ctx, current: Agreement | None, phone: str, based_on: int | None, terms: NewTerms
) -> Verdict:
    return modifying.decide_modify(current, phone=phone, based_on=based_on, terms=terms,
                                   bounds=ctx.deps.bounds, now=ctx.now)  # fmt: skip


async def _crm_target(ctx: Ctx, agreement_id: str | None, phone: str) -> Agreement | None:
    """The agreement a CRM's change names: by id, else the number's ACTIVE (or latest) one.
    A CRM may change only agreements of its own province."""
    if agreement_id is None:
        return await ctx.uow.latest_agreement(phone, ctx.sender.code)
    current = await ctx.uow.agreement(agreement_id)
    if current is not None and current.province != ctx.sender.code:
        raise Refused(QueueReason.UNAUTHORIZED_SENDER,
                      f"agreement {agreement_id} belongs to crm.{current.province}, not {ctx.sender}")  # fmt: skip
    return current


async def save_change(ctx: Ctx, verdict: Applied, change: str) -> None:
    """Stores the new version (refused if another writer got there first) and its history."""
    await ctx.uow.update_agreement(verdict.after, expected_version=verdict.before.version)
    await ctx.uow.record_change(verdict.before, verdict.after, source=str(ctx.sender), message_id=ctx.message_id,
                                change=change, now=ctx.now)  # fmt: skip
    await ctx.event(f"agreement.{change.lower()}", agreement_id=verdict.after.agreement_id,
                    version=verdict.after.version, status=verdict.after.status.value)  # fmt: skip


async def _withdraw_case(ctx: Ctx, cancelled: Agreement) -> None:
    """The bank cancelled an agreement an operator had not decided on yet: the case closes, and
    the bank gets the one more `sign.result` it was promised (REJECTED)."""
    case = await ctx.uow.open_case_for(cancelled.agreement_id)
    if case is None:
        return
    await ctx.uow.close_case(case.case_id, "WITHDRAWN", by=str(ctx.sender), reason="cancelled by the subscriber",
                             now=ctx.now)  # fmt: skip
    ctx.out.append(held_result(case, cancelled, ReasonCode.CANCELLED_BY_SUBSCRIBER))
    bank, _, request_id = case.flow_key.partition("|")
    flow = await ctx.uow.flow(bank, request_id) if request_id else None
    if flow is not None and flow.state is FlowState.MANUAL_REVIEW:
        await ctx.uow.save_flow(replace(flow, state=FlowState.CONFIRM_REJECTED), ctx.now)
