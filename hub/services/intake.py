"""The intake, the hub's message runner: every delivery passes here once, and every failure gets
its class here. A group of deliveries is classified (`hub.messaging.edge`), each accepted message
handled in a savepoint of one unit of work (its handler from `hub.services.dispatch`), its outbox
rows committed with it and handed to the relay; then each delivery's acknowledgement is decided.

- refused (invalid, unknown type, wrong or unknown sender, not supported): a dead record in the
  store, a masked copy to the dead queue and `message.rejected` to a known sender; never retried;
- a business refusal is not a failure: the flow answers with a reason code;
- transient (store busy, anything unexpected): retried with growing delays, then refused as
  RETRIES_EXHAUSTED;
- a duplicate-signing conflict opens a manual case (decided in the flow).
The broker message is acknowledged only after its effect is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from contracts.common import QueueReason
from hub import metrics
from hub.faults import Faults
from hub.flows.common import Refused
from hub.messaging.edge import Accepted, Delivery, Rejected, classify
from hub.messaging.outbound import to_rows
from hub.messaging.refusal import MAX_BODY, known_sender, known_sender_or_none, log_ids, refusal
from hub.messaging.retry import RetryScheduler
from hub.protection import mask_digits_in_text
from hub.services.context import Ctx, Deps
from hub.services.dispatch import Handler, route
from hub.store.unit_of_work import OutboxRow, Store, UnitOfWork

log = logging.getLogger("signhub.intake")
Routed = tuple[Accepted, Handler]  # an accepted message with the handler that takes it


class Action(StrEnum):
    ACK = "ack"
    REQUEUE = "requeue"  # nothing could be recorded; the broker keeps the message


class Relay(Protocol):
    """What the intake tells the outbox relay (hub.messaging.outbox_relay.OutboxRelay)."""

    def wake(self) -> None: ...
    def hand_over(self, rows: Sequence[OutboxRow]) -> None: ...


class Intake:
    def __init__(
        self, store: Store, deps: Deps, retry: RetryScheduler, relay: Relay, faults: Faults,
        *, require_user_id: bool = False,
    ) -> None:  # fmt: skip
        self._store = store
        self._deps = deps
        self._retry = retry
        self._relay = relay
        self._faults = faults
        self._require_user_id = require_user_id

    async def take(self, d: Delivery, *, poisoned: bool = False) -> Action:
        if poisoned:
            return await self._give_up(d, "the message was delivered too often without being processed")
        return (await self.take_batch([d]))[0]

    async def take_batch(self, batch: list[Delivery]) -> list[Action]:
        """Group commit: every accepted message of the batch in ONE transaction, each in its own
        savepoint (a failing message rolls back only itself); acknowledged only after the commit.
        Refusals and retries, the rare paths, are then handled one by one."""
        with metrics.observe_batch([self._labels(d) for d in batch]):
            return await self._take_batch(batch)

    def _labels(self, d: Delivery) -> tuple[str, str]:
        """A delivery's metric labels: a catalogue type and a registered party, never a party's
        own string (a made-up type would make a series of its own, and could carry a number)."""
        sender = known_sender_or_none(d, self._deps.registry)
        return metrics.type_label(d.msg_type), str(sender) if sender is not None else metrics.UNKNOWN_PARTY

    async def _take_batch(self, batch: list[Delivery]) -> list[Action]:
        verdicts = [self._classify(d) for d in batch]
        actions: list[Action | None] = [None] * len(batch)
        later: list[tuple[int, Rejected | Exception]] = []
        accepted = [(i, v) for i, v in enumerate(verdicts) if not isinstance(v, Rejected)]
        later += [(i, v) for i, v in enumerate(verdicts) if isinstance(v, Rejected)]
        if accepted:
            queued: list[OutboxRow] = []
            try:
                later += await self._commit_group(batch, accepted, queued)
            except Exception as exc:  # the commit itself failed: nothing of the group holds
                later = [x for x in later if isinstance(x[1], Rejected)] + [(i, exc) for i, _ in accepted]
                queued = []
            failed = {i for i, _ in later}
            done = [(i, acc.msg_type) for i, (acc, _) in accepted if i not in failed]
            for i, msg_type in done:
                actions[i] = Action.ACK
                metrics.intake_event("processed")
                self._faults.maybe_crash("after_commit", msg_type)
            if queued:
                self._relay.hand_over(queued)
        for i, problem in later:
            if isinstance(problem, Rejected):
                actions[i] = await self._refuse_or_retry(batch[i], problem)
            else:
                actions[i] = await self._retry_or_give_up(batch[i], problem)
        return [a if a is not None else Action.REQUEUE for a in actions]

    def _classify(self, d: Delivery) -> Routed | Rejected:
        try:
            verdict = classify(d, self._deps.registry, require_user_id=self._require_user_id, max_body=MAX_BODY,
                               user_prefix=f"{self._deps.names.prefix}.")  # fmt: skip
            if isinstance(verdict, Rejected):
                return verdict
            handler = route(verdict)
            if isinstance(handler, str):
                return Rejected(QueueReason.NOT_SUPPORTED, [handler], verdict.sender, verdict.msg_type)
        except Exception as exc:
            # A message that breaks the edge is refused, not retried: every retry would break it again.
            log.warning("classifying %s failed: %r", d.message_id, exc, extra=log_ids(d))
            return Rejected(QueueReason.INVALID_MESSAGE, [f"the message could not be read ({type(exc).__name__})"],
                            known_sender_or_none(d, self._deps.registry), d.msg_type)  # fmt: skip
        return verdict, handler

    async def _commit_group(
        self, batch: list[Delivery], accepted: list[tuple[int, Routed]], queued: list[OutboxRow]
    ) -> list[tuple[int, Rejected | Exception]]:
        """Applies the group in one unit of work; `queued` receives the outbox rows of the messages
        that hold (a message rolled back to its savepoint leaves none)."""
        failed: list[tuple[int, Rejected | Exception]] = []
        async with self._store.unit_of_work() as uow:
            for i, (acc, handler) in accepted:
                await uow.savepoint()
                try:
                    rows = await self._apply(uow, batch[i], acc, handler)
                except Refused as refused:
                    failed.append((i, Rejected(refused.reason, [refused.error], acc.sender, acc.msg_type)))
                except Exception as exc:
                    failed.append((i, exc))
                else:
                    await uow.release_savepoint()
                    queued += rows
                    continue
                await uow.rollback_to_savepoint()
        return failed

    async def _apply(self, uow: UnitOfWork, d: Delivery, accepted: Accepted, handler: Handler) -> list[OutboxRow]:
        """One accepted message's effect inside the caller's unit of work; returns what it queued
        in the outbox (every row a message causes is queued here)."""
        now = self._deps.clock()
        ctx = Ctx(uow, self._deps, accepted.sender, accepted.message_id, d.routing_key, d.correlation_id,
                  d.body, now)  # fmt: skip
        if await uow.seen(str(accepted.sender), accepted.message_id):
            # A broker redelivery (the hub died before its ack) is not the party asking again:
            # the answer is already in the outbox, so no copy is due.
            if not d.redelivered:
                await ctx.copy_latest_answer_to(accepted.message_id)
            metrics.intake_event("repeats")
        else:
            await uow.remember(str(accepted.sender), accepted.message_id, accepted.msg_type, now)
            await handler(ctx, accepted.message)
        return await uow.add_outbox(to_rows(ctx.out, self._deps.names, self._deps.new_id) + ctx.copies, now)

    async def _refuse_or_retry(self, d: Delivery, rejected: Rejected) -> Action:
        try:
            await self._refuse(d, rejected)
        except Exception as exc:
            return await self._retry_or_give_up(d, exc)
        return Action.ACK

    async def _retry_or_give_up(self, d: Delivery, exc: Exception) -> Action:
        log.warning("attempt %d of %s failed: %r", d.attempt, d.message_id, exc, extra=log_ids(d))
        if not self._retry.can_retry(d):
            return await self._give_up(d, f"{type(exc).__name__}: {exc}")
        try:
            await self._retry.schedule(d)
        except Exception:
            log.exception("could not schedule a retry of %s; the broker keeps it", d.message_id,
                          extra=log_ids(d))  # fmt: skip
            return Action.REQUEUE
        metrics.intake_event("retried")
        return Action.ACK

    async def _give_up(self, d: Delivery, error: str) -> Action:
        sender = known_sender(d, self._deps.registry)
        rejected = Rejected(QueueReason.RETRIES_EXHAUSTED, [error], sender, d.msg_type)
        try:
            await self._refuse(d, rejected)
        except Exception:
            log.exception("could not record %s as dead; the broker keeps it", d.message_id, extra=log_ids(d))
            return Action.REQUEUE
        return Action.ACK

    async def _refuse(self, d: Delivery, rejected: Rejected) -> None:
        """Records the refusal, queues the masked dead copy and tells a known sender
        (hub.messaging.refusal), in one unit of work."""
        now = self._deps.clock()
        refused = refusal(d, rejected, self._deps.new_id("D"), now, self._deps.protector)
        async with self._store.unit_of_work() as uow:
            await uow.record_dead(refused.record)
            await uow.add_outbox(to_rows(refused.out, self._deps.names, self._deps.new_id), now)
        log.info("refused %s from %s: %s %s", d.message_id, refused.sender, rejected.reason.value,
                 mask_digits_in_text(refused.error), extra=log_ids(d, refused.sender))  # fmt: skip
        metrics.intake_event(f"refused.{rejected.reason.value}")
        self._relay.wake()
