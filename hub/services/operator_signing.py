"""The async shell of flow 1's messages: a bank's `sign.confirmed` / `sign.failed` naming a
session, and the sweeper that expires sessions never completed. The web side (opening sessions,
tokens, status) is `hub.services.signing_entry`.
"""

from __future__ import annotations

import asyncio
import logging

from contracts.bank import SignConfirmed, SignFailed
from hub.agreements import Account, Agreement
from hub.errors import Conflict
from hub.flows import bank_signing as flow2
from hub.flows import operator_signing as flow1
from hub.services.context import Ctx, Deps
from hub.services.duplicates import hold_duplicate
from hub.store.unit_of_work import Store, UnitOfWork

log = logging.getLogger("signhub.operator_signing")


async def apply(uow: UnitOfWork, ctx: Ctx, step: flow1.SessionStep) -> None:
    if step.session is not None:
        await uow.save_session(step.session, ctx.now)
    ctx.out.extend(step.out)
    if step.copy_latest is not None:
        await ctx.copy_latest_answer(*step.copy_latest)


async def on_sign_confirmed(ctx: Ctx, msg: SignConfirmed) -> None:
    assert msg.session_id is not None
    p = ctx.deps.protector
    session = await ctx.uow.session(msg.session_id)
    account = Account(p.fingerprint(msg.account_no), msg.account_no[-4:], p.encrypt(msg.account_no),
                      msg.account_type)  # fmt: skip
    decision = flow1.receive_confirmation(
        session, msg, bank=ctx.sender.code, message_id=ctx.message_id, account=account, now=ctx.now,
        agreement_id=ctx.deps.new_id("A"),
    )  # fmt: skip
    if not isinstance(decision, Agreement):
        await apply(ctx.uow, ctx, decision)
        return
    assert session is not None
    confirm_fp = flow2.confirmation_fingerprint(msg, account.fingerprint)
    try:
        await ctx.uow.insert_agreement(decision)
    except Conflict as conflict:
        held = await hold_duplicate(ctx, msg, decision, session.key, conflict)
        if held is not None:
            await apply(ctx.uow, ctx, flow1.hold_for_review(session, held, ctx.message_id, confirm_fp))
        return
    await apply(ctx.uow, ctx, flow1.record_agreement(session, decision, ctx.message_id, confirm_fp))
    await ctx.uow.record_change(None, decision, source=str(ctx.sender), message_id=ctx.message_id,
                                change="SIGN", now=ctx.now)  # fmt: skip
    await ctx.event("agreement.active", agreement_id=decision.agreement_id, flow_key=session.key)


async def on_sign_failed(ctx: Ctx, msg: SignFailed) -> None:
    assert msg.session_id is not None
    session = await ctx.uow.session(msg.session_id)
    step = flow1.receive_sign_failed(session, bank=ctx.sender.code, reason=msg.reason, now=ctx.now)
    await apply(ctx.uow, ctx, step)
    if step.session is not None:
        await ctx.event("sign.failed", flow_key=step.session.key, reason=msg.reason)


class SessionSweeper:
    """Closes open sessions past their window as EXPIRED, so the store says what happened to them."""

    def __init__(self, store: Store, deps: Deps, poll_s: float) -> None:
        self._store = store
        self._deps = deps
        self._poll_s = poll_s

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a busy store now is no reason to stop sweeping later
                log.exception("session sweep failed")
            await asyncio.sleep(self._poll_s)  # a timer: nothing else says "the window has passed"

    async def sweep(self) -> int:
        now = self._deps.clock()
        expired = 0
        for session_id in await self._store.due_sessions(now, 100):
            async with self._store.unit_of_work() as uow:
                session = await uow.session(session_id)
                step = flow1.expire(session, now) if session is not None else flow1.SessionStep()
                if step.session is not None:
                    await uow.save_session(step.session, now)
                    await uow.add_event(now, "session.expired", flow_key=step.session.key)
                    expired += 1
        return expired
