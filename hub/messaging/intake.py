"""The intake: every delivery passes here once, and every failure gets its class here.

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
from typing import Any, Protocol

from contracts.common import Message, QueueReason, ReasonCode
from contracts.rejection import MessageRejected
from contracts.routing import Party
from hub import metrics
from hub.faults import Faults
from hub.flows.common import Refused
from hub.messaging.copies import kept_of, masked_properties, queue_copy, shown, shown_if_any
from hub.messaging.edge import Accepted, Delivery, Rejected, classify, sender_of
from hub.messaging.outbound import to_rows
from hub.messaging.retry import RetryScheduler
from hub.outgoing import Outgoing, QueueCopy, Target
from hub.protection import mask_digits_in_text
from hub.services.context import Ctx, Deps
from hub.services.dispatch import handler_for, not_supported
from hub.store.unit_of_work import DeadRecord, OutboxRow, Store, UnitOfWork

log = logging.getLogger("signhub.intake")
MAX_BODY = 64 * 1024


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
        self.stats: dict[str, int] = {}

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
        sender = _known_sender_or_none(d, self._deps)
        return metrics.type_label(d.msg_type), str(sender) if sender is not None else metrics.UNKNOWN_PARTY

    async def _take_batch(self, batch: list[Delivery]) -> list[Action]:
        verdicts = [self._classify(d) for d in batch]
        actions: list[Action | None] = [None] * len(batch)
        later: list[tuple[int, Rejected | Exception]] = []
        accepted = [(i, v) for i, v in enumerate(verdicts) if isinstance(v, Accepted)]
        later += [(i, v) for i, v in enumerate(verdicts) if isinstance(v, Rejected)]
        if accepted:
            queued: list[OutboxRow] = []
            try:
                later += await self._commit_group(batch, accepted, queued)
            except Exception as exc:  # the commit itself failed: nothing of the group holds
                later = [x for x in later if isinstance(x[1], Rejected)] + [(i, exc) for i, _ in accepted]
                queued = []
            failed = {i for i, _ in later}
            done = [(i, acc.msg_type) for i, acc in accepted if i not in failed]
            for i, msg_type in done:
                actions[i] = Action.ACK
                self._count("processed")
                self._faults.maybe_crash("after_commit", msg_type)
            if queued:
                self._relay.hand_over(queued)
        for i, problem in later:
            if isinstance(problem, Rejected):
                actions[i] = await self._refuse_or_retry(batch[i], problem)
            else:
                actions[i] = await self._retry_or_give_up(batch[i], problem)
        return [a if a is not None else Action.REQUEUE for a in actions]

    def _classify(self, d: Delivery) -> Accepted | Rejected:
        try:
            verdict = classify(d, self._deps.registry, require_user_id=self._require_user_id, max_body=MAX_BODY,
                               user_prefix=f"{self._deps.names.prefix}.")  # fmt: skip
            if isinstance(verdict, Accepted) and (why := not_supported(verdict)) is not None:
                return Rejected(QueueReason.NOT_SUPPORTED, [why], verdict.sender, verdict.msg_type)
        except Exception as exc:
            # A message that breaks the edge is refused, not retried: every retry would break it again.
            log.warning("classifying %s failed: %r", d.message_id, exc, extra=_ids(d))
            return Rejected(QueueReason.INVALID_MESSAGE, [f"the message could not be read ({type(exc).__name__})"],
                            _known_sender_or_none(d, self._deps), d.msg_type)  # fmt: skip
        return verdict

    async def _commit_group(
        self, batch: list[Delivery], accepted: list[tuple[int, Accepted]], queued: list[OutboxRow]
    ) -> list[tuple[int, Rejected | Exception]]:
        """Applies the group in one unit of work; `queued` receives the outbox rows of the messages
        that hold (a message rolled back to its savepoint leaves none)."""
        failed: list[tuple[int, Rejected | Exception]] = []
        async with self._store.unit_of_work() as uow:
            for i, acc in accepted:
                await uow.step("SAVEPOINT message")
                try:
                    rows = await self._apply(uow, batch[i], acc)
                except Refused as refused:
                    failed.append((i, Rejected(refused.reason, [refused.error], acc.sender, acc.msg_type)))
                except Exception as exc:
                    failed.append((i, exc))
                else:
                    await uow.step("RELEASE SAVEPOINT message")
                    queued += rows
                    continue
                await uow.step("ROLLBACK TO SAVEPOINT message")
                await uow.step("RELEASE SAVEPOINT message")
        return failed

    async def _apply(self, uow: UnitOfWork, d: Delivery, accepted: Accepted) -> list[OutboxRow]:
        """One accepted message's effect inside the caller's unit of work; returns what it queued
        in the outbox (every row a message causes is queued here)."""
        handler = handler_for(accepted)
        assert handler is not None
        now = self._deps.clock()
        ctx = Ctx(uow, self._deps, accepted.sender, accepted.message_id, d.routing_key, d.correlation_id,
                  d.body, now)  # fmt: skip
        if await uow.seen(str(accepted.sender), accepted.message_id):
            # A broker redelivery (the hub died before its ack) is not the party asking again:
            # the answer is already in the outbox, so no copy is due.
            if not d.redelivered:
                await ctx.copy_latest_answer_to(accepted.message_id)
            self._count("repeats")
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
        log.warning("attempt %d of %s failed: %r", d.attempt, d.message_id, exc, extra=_ids(d))
        if not self._retry.can_retry(d):
            return await self._give_up(d, f"{type(exc).__name__}: {exc}")
        try:
            await self._retry.schedule(d)
        except Exception:
            log.exception("could not schedule a retry of %s; the broker keeps it", d.message_id,
                          extra=_ids(d))  # fmt: skip
            return Action.REQUEUE
        self._count("retried")
        return Action.ACK

    async def _give_up(self, d: Delivery, error: str) -> Action:
        sender = _known_sender(d, self._deps)
        rejected = Rejected(QueueReason.RETRIES_EXHAUSTED, [error], sender, d.msg_type)
        try:
            await self._refuse(d, rejected)
        except Exception:
            log.exception("could not record %s as dead; the broker keeps it", d.message_id, extra=_ids(d))
            return Action.REQUEUE
        return Action.ACK

    async def _refuse(self, d: Delivery, rejected: Rejected) -> None:
        """Records the refusal, queues the masked dead copy and tells a known sender. What the party
        named (routing key, type, message_id) is kept masked, the record as its copy (the console
        finds the copy by them); of an oversize body only a prefix is kept."""
        now = self._deps.clock()
        dead_id = self._deps.new_id("D")
        error = "; ".join(rejected.errors)
        sender = str(rejected.sender) if rejected.sender else _claimed_sender(d.routing_key)
        msg_type = d.msg_type or rejected.msg_type or ""
        kept = kept_of(d.body, MAX_BODY)
        record = DeadRecord(
            dead_id, str(rejected.sender) if rejected.sender else None, shown_if_any(d.message_id), shown(d.routing_key),
            shown_if_any(rejected.msg_type), rejected.reason.value, mask_digits_in_text(error), masked_properties(d, kept),
            self._deps.protector.encrypt(kept.body), now,
        )  # fmt: skip
        out: list[Outgoing | QueueCopy] = [queue_copy(
            Target.DEAD, raw_body=kept.body, message_id=d.message_id or dead_id, msg_type=msg_type,
            sender=sender, routing_key=d.routing_key, reason=rejected.reason.value, error=error,
            original_length=kept.length,
        )]  # fmt: skip
        if rejected.sender is not None:
            out.append(Outgoing(rejected.sender, "message.rejected", _rejection(d, rejected), d.message_id))
        async with self._store.unit_of_work() as uow:
            await uow.record_dead(record)
            await uow.add_outbox(to_rows(out, self._deps.names, self._deps.new_id), now)
        log.info(
            "refused %s from %s: %s %s",
            d.message_id,
            sender,
            rejected.reason.value,
            mask_digits_in_text(error),
            extra=_ids(d, sender),
        )
        self._count(f"refused.{rejected.reason.value}")
        self._relay.wake()

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
        metrics.intake_event(key)


def _ids(d: Delivery, sender: str | None = None) -> dict[str, Any]:
    """The ids a log line about `d` carries (hub.logging writes them as fields)."""
    return {"message_id": d.message_id, "correlation_id": d.correlation_id, "msg_type": d.msg_type,
            "sender": sender or _claimed_sender(d.routing_key)}  # fmt: skip


def _claimed_sender(routing_key: str) -> str:
    """`<kind>.<code>` as the routing key names it (`bank.NOPE.sign.request` -> `bank.NOPE`), for a
    sender the registry does not know; the type after it may itself contain dots."""
    return ".".join(routing_key.split(".")[:2])


def _rejection(d: Delivery, rejected: Rejected) -> Message:
    # RETRIES_EXHAUSTED is a queue reason only; answers carry OTHER with the reason in errors.
    code = ReasonCode.__members__.get(rejected.reason.value, ReasonCode.OTHER)
    errors = [mask_digits_in_text(e) for e in rejected.errors]
    if code is ReasonCode.OTHER:
        errors.insert(0, rejected.reason.value)
    # The sender's own message_id comes back as it gave it (to correlate); a type with a number is masked.
    return MessageRejected(message_id=d.message_id or "", type=shown(rejected.msg_type or d.msg_type or ""),
                           reason_code=code, errors=errors)  # fmt: skip


def _known_sender(d: Delivery, deps: Deps) -> Party | None:
    sender = sender_of(d.routing_key)
    return sender if sender is not None and deps.registry.knows(sender) else None


def _known_sender_or_none(d: Delivery, deps: Deps) -> Party | None:
    try:
        return _known_sender(d, deps)
    except Exception:
        return None
