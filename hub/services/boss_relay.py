"""The BOSS relay: a CRM's `boss.sync` goes to its BOSS, BOSS's answer comes back to the CRM.

The hub adds nothing but routing and a record on the agreement's timeline: a CRM may only reach
its own province's BOSS, and BOSS answers reach only its own CRM.
"""

from __future__ import annotations

from contracts.boss import AgreementSync, AgreementSynced
from contracts.crm import BossSync, BossSynced
from contracts.routing import Party, PartyKind
from hub.outgoing import Outgoing
from hub.services.context import Ctx


async def on_boss_sync(ctx: Ctx, msg: BossSync) -> None:
    boss = Party(PartyKind.BOSS, ctx.sender.code)
    relayed = AgreementSync.model_validate(msg.model_dump())
    ctx.out.append(Outgoing(boss, "agreement.sync", relayed, ctx.message_id))
    await ctx.event("boss.sync.relayed", agreement_id=msg.agreement_id, action=msg.action.value)


async def on_agreement_synced(ctx: Ctx, msg: AgreementSynced) -> None:
    crm = Party(PartyKind.CRM, ctx.sender.code)
    # BOSS correlates to the hub's agreement.sync; the CRM expects its own boss.sync's message_id.
    answered = await ctx.uow.correlation_of(ctx.correlation_id) if ctx.correlation_id else None
    relayed = BossSynced(agreement_id=msg.agreement_id, result=msg.result, reason=msg.reason)
    ctx.out.append(Outgoing(crm, "boss.synced", relayed, answered))
    if await ctx.uow.agreement(msg.agreement_id) is not None:
        await ctx.uow.set_sync(msg.agreement_id, "boss", msg.result.value)
    await ctx.event("boss.synced", agreement_id=msg.agreement_id, result=msg.result.value, reason=msg.reason)
