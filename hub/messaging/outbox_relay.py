"""The outbox relay: publishes committed outbox rows with publisher confirms, then marks them sent.

A row is marked only after the broker confirmed it and no queue returned it (`mandatory` with
`on_return_raises`: a confirm alone is also given for a message no queue took). After a crash,
rows not yet marked are published again with their original message_id; parties drop repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange

from contracts import envelope as env
from contracts.topology import Names
from hub import metrics
from hub.faults import Faults
from hub.liveness import PartDown
from hub.outgoing import Target
from hub.store.unit_of_work import OutboxClaim, OutboxRow, Store

log = logging.getLogger("signhub.relay")
BATCH = 256


class OutboxRelay:
    """Publishes in rounds of up to BATCH rows, with up to `store.relay_rounds` in flight: a round that
    waits for the broker's confirms does not hold back the rows committed meanwhile, which the
    next round claims at once (a row is in one round at a time: `claim_outbox` skips the rows of
    rounds still in flight)."""

    def __init__(
        self,
        store: Store,
        channel: AbstractChannel,
        names: Names,
        clock: Callable[[], datetime],
        faults: Faults,
        publish_timeout_s: float = 10.0,
    ) -> None:
        self._store = store
        self._channel = channel
        self._names = names
        self._clock = clock
        self._faults = faults
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._outbound: AbstractExchange | None = None
        # A counter, not a semaphore: hand_over takes a round without awaiting.
        self._free_rounds = store.relay_rounds
        self._round_ended = asyncio.Event()
        self._in_flight: set[int] = set()
        self._rounds: set[asyncio.Task[None]] = set()
        self.failing: str | None = None  # why the last round's publishes failed; None after a success

    @property
    def channel(self) -> AbstractChannel:
        return self._channel

    def wake(self) -> None:
        self._wake.set()

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """Rows a unit of work has just committed: a round of their own publishes them at once,
        without the wake-up, claim and read of a usual round (at light traffic a round per
        commit, whose wait from the commit was p50 0.8 ms, p99 4 ms). Where the store cannot hand them over, or no
        round is free, the relay is woken and reads them as usual."""
        claim = self._store.claim_committed(rows) if self._free_rounds > 0 else None
        if claim is None:
            self.wake()
            return
        self._free_rounds -= 1
        task = asyncio.create_task(self._publish_round(claim), name="outbox-round")
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    async def run(self) -> None:
        self._outbound = await self._channel.get_exchange(self._names.outbound_exchange)
        backoff = 0.05
        try:
            while True:
                # Cleared before the claim reads the outbox: a commit made after it wakes the
                # next round at once (clearing later lost those wake-ups).
                self._wake.clear()
                while self._free_rounds == 0:
                    self._round_ended.clear()
                    await self._round_ended.wait()
                self._free_rounds -= 1
                claimed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(self._round(claimed), name="outbox-round")
                self._rounds.add(task)
                task.add_done_callback(self._rounds.discard)
                taken = await claimed
                if taken < 0:  # the store failed
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.05
                if taken < BATCH:
                    # Woken by a commit; the timeout is only a safety net (and retries rows whose
                    # publish failed).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        finally:
            for task in list(self._rounds):
                task.cancel()

    async def _round(self, claimed: asyncio.Future[int]) -> None:
        """Claims rows (telling `claimed` how many), publishes them, marks the confirmed ones."""
        await self._publish_round(self._store.claim_outbox(BATCH, skip=self._in_flight), claimed)

    async def _publish_round(
        self, claiming: AbstractAsyncContextManager[OutboxClaim], claimed: asyncio.Future[int] | None = None
    ) -> None:
        ids: set[int] = set()
        try:
            async with claiming as claim:
                ids = {r.id for r in claim.rows if r.id is not None}
                self._in_flight |= ids
                if claimed is not None:
                    claimed.set_result(len(claim.rows))
                if claim.rows:
                    await self._publish_claimed(claim)
        except Exception:
            log.exception("an outbox round failed; its rows are published again later")
        finally:
            self._in_flight -= ids
            if claimed is not None and not claimed.done():
                claimed.set_result(-1)
            self._free_rounds += 1
            self._round_ended.set()

    async def _publish_claimed(self, claim: OutboxClaim) -> None:
        rows = claim.rows
        results = await asyncio.gather(*(self._publish(r) for r in rows), return_exceptions=True)
        done = [r.id for r, res in zip(rows, results, strict=True) if res is None and r.id is not None]
        metrics.published(rows, results)
        failed = [(row, res) for row, res in zip(rows, results, strict=True) if isinstance(res, BaseException)]
        if failed:
            # One line a round, not one a row: in a broker outage every row of every round fails.
            row, first = failed[0]
            self.failing = f"{len(failed)} of {len(rows)} publishes failed, the first with {first!r}"
            log.warning("%s (%s %s); they are published again later", self.failing, row.type, row.message_id)
        elif done:
            self.failing = None
        for row in rows:
            self._faults.maybe_crash("after_publish", row.type)
        await claim.mark_sent(done, self._clock())

    async def check(self) -> None:
        """Working means: the channel answers a round trip (a passive declare of the outbound
        exchange) and no publish has failed since the last that succeeded."""
        if self._channel.is_closed:
            raise PartDown("its channel is closed")
        underlay = await self._channel.get_underlay_channel()
        await underlay.exchange_declare(self._names.outbound_exchange, passive=True)
        if self.failing is not None:
            raise PartDown(self.failing)

    async def repair(self) -> None:
        """Reopens the channel: one the broker closed while the connection stayed up is not always
        reopened by aio-pika (seen with the simulators' channels). The retry publisher shares it."""
        if self._channel.is_closed:
            await self._channel.reopen()
            self._outbound = None

    async def _publish(self, row: OutboxRow) -> None:
        if self._outbound is None:
            self._outbound = await self._channel.get_exchange(self._names.outbound_exchange)
        message = aio_pika.Message(
            row.body,
            message_id=row.message_id,
            correlation_id=row.correlation_id,
            type=row.type,
            content_type=env.CONTENT_TYPE,
            timestamp=self._clock(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={env.H_SCHEMA_VERSION: env.SCHEMA_VERSION, **row.headers},
            app_id="signhub",
        )
        exchange = self._outbound.name if row.target == Target.PARTY.value else ""
        channel = await self._channel.get_underlay_channel()
        if not isinstance(channel, aiormq.Channel):  # pragma: no cover - aio-pika always gives one
            raise TypeError(f"unexpected channel {channel!r}")
        # What aio-pika's Exchange.publish does, but without waiting for the frame to be written
        # (wait=False): waiting holds the channel's lock across two turns of the event loop per
        # message, so a round's publishes went out one by one, between the next groups' work.
        # The broker's confirm is still awaited, and a returned message still raises
        # (on_return_raises is the channel's). What may wait unwritten in the socket's buffer is
        # bounded by the rounds in flight (relay_rounds x BATCH rows).
        # The timeout bounds the confirm too: a publish begun as its channel closed could wait for
        # ever (its confirm made after the channel had failed the others), and its round held its
        # rows out of every later claim: 10 rows never went out after a broker restart. A timed-out
        # row is published again, under the same message_id.
        await channel.basic_publish(
            row.body, exchange=exchange, routing_key=row.routing_key, properties=message.properties,
            mandatory=True, wait=False, timeout=self._publish_timeout_s,
        )  # fmt: skip
