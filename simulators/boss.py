"""A simulated provincial BOSS (billing): takes the agreements its CRM syncs through the hub.

It answers every `agreement.sync` with `agreement.synced` for the same agreement and keeps the
billing side's agreement table, so a scenario can check that BOSS ended up where the CRM is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.boss import AgreementSync, AgreementSynced
from contracts.common import SyncAction, SyncOutcome, UserType
from simulators.party import PartyClient
from simulators.recording import Received, Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BossKnobs:
    """`fail`: phones (or True: all) whose sync is answered `FAILED`; `delay_s` before answering."""

    fail: bool | frozenset[str] = frozenset()
    delay_s: float = 0.0

    def fails(self, phone: str) -> bool:
        return self.fail if isinstance(self.fail, bool) else phone in self.fail


@dataclass(slots=True)
class BillingAgreement:
    """One row of the billing side's agreement table."""

    agreement_id: str
    phone: str
    user_type: UserType | None
    recharge_threshold: int | None
    recharge_amount: int | None
    auto_pay: bool | None
    deleted: bool = False


class BossSimulator:
    """One province's BOSS, speaking through its `PartyClient`."""

    def __init__(self, client: PartyClient, knobs: BossKnobs | None = None) -> None:
        self.client = client
        self.province = client.party.code
        self.knobs = knobs or BossKnobs()
        self.table: dict[str, BillingAgreement] = {}
        self.recorder = Recorder(str(client.party))

    async def start(self, *, wait_s: float = 0.0) -> None:
        await self.client.start(self._handle, wait_s=wait_s)

    def active(self) -> dict[str, BillingAgreement]:
        return {k: v for k, v in self.table.items() if not v.deleted}

    # The wait owns its timeout so that the error can name what did not arrive.
    async def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_until(predicate, what, timeout)

    async def _handle(self, msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage) -> None:
        await self.recorder.add(Received.of(msg_type, body, incoming))
        if msg_type == "agreement.sync":
            await self._on_sync(AgreementSync.model_validate_json(incoming.body), incoming)
        await self.recorder.changed()

    async def _on_sync(self, sync: AgreementSync, incoming: AbstractIncomingMessage) -> None:
        if self.knobs.delay_s:
            await asyncio.sleep(self.knobs.delay_s)
        if self.knobs.fails(sync.phone):
            answer = AgreementSynced(
                agreement_id=sync.agreement_id, result=SyncOutcome.FAILED, reason="billing down"
            )
        else:
            self._apply(sync)
            answer = AgreementSynced(agreement_id=sync.agreement_id, result=SyncOutcome.OK)
        await self.client.publish("agreement.synced", answer, correlation_id=incoming.message_id)

    def _apply(self, sync: AgreementSync) -> None:
        row = BillingAgreement(
            agreement_id=sync.agreement_id,
            phone=sync.phone,
            user_type=sync.user_type,
            recharge_threshold=sync.recharge_threshold,
            recharge_amount=sync.recharge_amount,
            auto_pay=sync.auto_pay,
            deleted=sync.action is SyncAction.DELETE,
        )
        if sync.action is SyncAction.DELETE and sync.agreement_id not in self.table:
            log.warning("boss.%s deletes unknown agreement %s", self.province, sync.agreement_id)
        self.table[sync.agreement_id] = row
