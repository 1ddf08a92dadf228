"""CRM answer timers: flows waiting on a silent CRM are asked again, then timed out.

The deadline is a column of the flow in the store, so a timer survives a restart of the hub: the
loop simply finds it due when the hub is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from contracts.routing import Party, PartyKind
from hub.messaging.outbound import to_rows
from hub.services.bank_signing import fire_crm_timer
from hub.services.context import Ctx, Deps
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.timers")


class CrmTimers:
    def __init__(self, store: Store, deps: Deps, wake_relay: Callable[[], None], poll_s: float) -> None:
        self._store = store
        self._deps = deps
        self._wake_relay = wake_relay
        self._poll_s = poll_s

    async def run(self) -> None:
        while True:
            try:
                fired = await self.fire_due()
            except Exception:
                log.exception("CRM timers failed; trying again")
                fired = 0
            if fired == 0:
                await asyncio.sleep(self._poll_s)  # a poll interval, not a wait for an event

    async def fire_due(self) -> int:
        due = await self._store.due_flows(self._deps.clock(), 100)
        for bank, request_id in due:
            await self._fire(bank, request_id)
        if due:
            self._wake_relay()
        return len(due)

    async def _fire(self, bank: str, request_id: str) -> None:
        now = self._deps.clock()
        async with self._store.unit_of_work() as uow:
            flow = await uow.flow(bank, request_id)
            if flow is None:
                return
            timer_id = f"timer:{flow.verify_id}:{flow.asks}"
            ctx = Ctx(uow, self._deps, Party(PartyKind.BANK, bank), timer_id, "", None, b"", now)
            await fire_crm_timer(ctx, flow)
            await uow.add_outbox(to_rows(ctx.out, self._deps.names, self._deps.new_id), now)
