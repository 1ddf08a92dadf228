"""The async shell of flow 2: load what a step needs, call the pure decision, save, queue."""

from __future__ import annotations

from contracts.bank import SignConfirmed, SignFailed, SignRequest
from contracts.common import QueueReason
from contracts.crm import SignSynced, VerifyResponse
from hub.agreements import Account, Agreement, SigningFlow
from hub.errors import Conflict
from hub.flows import bank_signing as flow2
from hub.flows.common import Refused, fingerprint
from hub.services import operator_signing
from hub.services.context import Ctx
from hub.services.duplicates import hold_duplicate


async def on_sign_request(ctx: Ctx, msg: SignRequest) -> None:
    p, uow = ctx.deps.protector, ctx.uow
    province = ctx.deps.segments.province_of(msg.phone)
    if province not in ctx.deps.registry.provinces:
        province = None  # no CRM of ours to ask: the number's home is unknown to this hub
    existing = await uow.flow(ctx.sender.code, msg.request_id)
    active = None if existing else await uow.active_agreement(msg.phone)
    account = Account(p.fingerprint(msg.account_no), msg.account_no[-4:], p.encrypt(msg.account_no),
                      msg.account_type)  # fmt: skip
    request_fp = fingerprint(msg.phone, account.fingerprint, msg.account_type, msg.holder_name,
                             p.fingerprint(msg.id_no), msg.channel)  # fmt: skip
    step = flow2.receive_sign_request(
        msg, bank=ctx.sender.code, message_id=ctx.message_id, province=province,
        already_active=active is not None, existing=existing, account=account,
        id_encrypted=p.encrypt(msg.id_no), request_fingerprint=request_fp, now=ctx.now,
        new_id=ctx.deps.new_id, timing=ctx.deps.timing,
    )  # fmt: skip
    await ctx.apply(step)
    if step.flow is not None:
        await ctx.event("sign.requested", flow_key=step.flow.key, state=step.flow.state.value)


async def on_verify_response(ctx: Ctx, msg: VerifyResponse) -> None:
    flow = await ctx.uow.flow_by_verify_id(msg.verify_id)
    if flow is None:
        return  # not a verify_id of ours: acknowledged, changes nothing (documented)
    if flow.province != ctx.sender.code:
        raise Refused(QueueReason.UNAUTHORIZED_SENDER,
                      f"verify_id {msg.verify_id} was put to crm.{flow.province}, not to {ctx.sender}")  # fmt: skip
    step = flow2.receive_verify_response(flow, msg, ctx.now, ctx.deps.timing)
    await ctx.apply(step)
    if step.flow is not None:
        await ctx.event("crm.verified", flow_key=flow.key, result=msg.result.value, reason=msg.reason_code)


async def fire_crm_timer(ctx: Ctx, flow: SigningFlow) -> None:
    step = flow2.crm_timer_expired(flow, ctx.now, ctx.deps.timing)
    await ctx.apply(step)
    if step.flow is not None:
        await ctx.event("crm.timer", flow_key=flow.key, asks=step.flow.asks, state=step.flow.state.value)


async def on_sign_confirmed(ctx: Ctx, msg: SignConfirmed) -> None:
    if msg.session_id is not None:
        await operator_signing.on_sign_confirmed(ctx, msg)  # flow 1: the operator channel
        return
    bank = ctx.sender.code
    flow = await ctx.uow.flow(bank, msg.request_id) if msg.request_id else None
    account_fp = ctx.deps.protector.fingerprint(msg.account_no)
    decision = flow2.receive_confirmation(
        flow, msg, bank=bank, message_id=ctx.message_id, account_fingerprint=account_fp, now=ctx.now,
        new_id=ctx.deps.new_id, timing=ctx.deps.timing,
    )  # fmt: skip
    if not isinstance(decision, Agreement):
        await ctx.apply(decision)
        return
    assert flow is not None
    confirm_fp = flow2.confirmation_fingerprint(msg, account_fp)
    try:
        await ctx.uow.insert_agreement(decision)
    except Conflict as conflict:
        await _not_activated(ctx, msg, flow, decision, confirm_fp, conflict)
        return
    await ctx.apply(flow2.record_agreement(flow, decision, ctx.message_id, confirm_fp))
    await ctx.uow.record_change(None, decision, source=str(ctx.sender), message_id=ctx.message_id, change="SIGN",
                                now=ctx.now)  # fmt: skip
    await ctx.event("agreement.active", agreement_id=decision.agreement_id, flow_key=flow.key)


async def _not_activated(
    ctx: Ctx, msg: SignConfirmed, flow: SigningFlow, agreement: Agreement, confirm_fp: str, conflict: Conflict
) -> None:
    held = await hold_duplicate(ctx, msg, agreement, flow.key, conflict)
    if held is not None:
        await ctx.apply(flow2.hold_for_review(flow, held, ctx.message_id, confirm_fp))


async def on_sign_failed(ctx: Ctx, msg: SignFailed) -> None:
    if msg.session_id is not None:
        await operator_signing.on_sign_failed(ctx, msg)  # flow 1: the operator channel
        return
    flow = await ctx.uow.flow(ctx.sender.code, msg.request_id) if msg.request_id else None
    if flow is None:
        return  # nothing open under that name: the bank is not answered either way
    step = flow2.receive_sign_failed(flow)
    await ctx.apply(step)
    if step.flow is not None:
        await ctx.event("sign.failed", flow_key=flow.key, reason=msg.reason)


async def on_sign_synced(ctx: Ctx, msg: SignSynced) -> None:
    agreement = await ctx.uow.agreement(msg.agreement_id)
    if agreement is None:
        return
    if agreement.province != ctx.sender.code:
        raise Refused(QueueReason.UNAUTHORIZED_SENDER,
                      f"agreement {msg.agreement_id} belongs to crm.{agreement.province}, not {ctx.sender}")  # fmt: skip
    await ctx.uow.set_sync(msg.agreement_id, "crm", msg.result.value)
    await ctx.event("crm.synced", agreement_id=msg.agreement_id, result=msg.result.value, reason=msg.reason)
