"""What a message handler gets: its unit of work, who sent what, the time, and the hub's tools.

Handlers queue what to send on the context; the intake writes it to the outbox in the same
transaction, so a handler never publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.routing import Party
from contracts.topology import Names
from hub.flows.common import NewId, Step, Timing
from hub.flows.modifying import Bounds
from hub.outgoing import Outgoing, QueueCopy
from hub.parties import Registry
from hub.protection import DataProtector
from hub.segments import SegmentTable
from hub.store.unit_of_work import OutboxRow, UnitOfWork

DEFAULT_BOUNDS = Bounds(threshold_max=100_000, amount_min=1_000, amount_max=100_000)


@dataclass(frozen=True, slots=True)
class Deps:
    """The hub's tools, built once by the composition root."""

    names: Names
    registry: Registry
    segments: SegmentTable
    protector: DataProtector
    timing: Timing
    new_id: NewId
    clock: Callable[[], datetime]
    bounds: Bounds = DEFAULT_BOUNDS


@dataclass(slots=True)
class Ctx:
    uow: UnitOfWork
    deps: Deps
    sender: Party
    message_id: str
    routing_key: str
    correlation_id: str | None
    raw_body: bytes
    now: datetime
    out: list[Outgoing | QueueCopy] = field(default_factory=list)
    copies: list[OutboxRow] = field(default_factory=list)

    async def apply(self, step: Step) -> None:
        """Saves the step's flow state, queues its messages and any answer copy it asks for."""
        if step.flow is not None:
            await self.uow.save_flow(step.flow, self.now)
        self.out.extend(step.out)
        if step.copy_latest is not None:
            await self.copy_latest_answer(*step.copy_latest)

    async def copy_latest_answer(self, routing_key: str, correlation_id: str) -> None:
        answers = [r for r in await self.uow.answers_to(correlation_id) if r.routing_key == routing_key]
        if answers:
            self.copies.append(answers[-1])

    async def copy_latest_answer_to(self, correlation_id: str) -> None:
        """A repeated message: re-send the latest answer it had, if any (same message_id)."""
        answers = await self.uow.answers_to(correlation_id)
        if answers:
            self.copies.append(answers[-1])

    async def event(self, event: str, *, agreement_id: str | None = None, flow_key: str | None = None,
                    **detail: object) -> None:  # fmt: skip
        await self.uow.add_event(
            self.now, event, agreement_id=agreement_id, flow_key=flow_key, party=str(self.sender),
            message_id=self.message_id, detail={k: v for k, v in detail.items() if v is not None},
        )  # fmt: skip
