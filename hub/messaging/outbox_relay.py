"""The outbox relay: publishes committed outbox rows with publisher confirms, then marks them sent.

A row is marked only after the broker confirmed it and no queue returned it (`mandatory` with
`on_return_raises`: a confirm alone is also given for a message no queue took). After a crash,
rows not yet marked are published again with their original message_id; parties drop repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from contracts import envelope as env
from contracts.topology import Names
from hub import metrics
from hub.faults import Faults
from hub.outgoing import Target
from hub.store.unit_of_work import OutboxRow, Store

log = logging.getLogger("signhub.relay")
BATCH = 256


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        channel: AbstractChannel,
        names: Names,
        clock: Callable[[], datetime],
        faults: Faults,
    ) -> None:
        self._store = store
        self._channel = channel
        self._names = names
        self._clock = clock
        self._faults = faults
        self._wake = asyncio.Event()
        self._outbound: AbstractExchange | None = None
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._outbound = await self._channel.get_exchange(self._names.outbound_exchange)
        backoff = 0.05
        while True:
            # Cleared before reading the outbox: a commit made while this round publishes wakes
            # the next round at once (clearing after publishing lost those wake-ups, and their
            # messages waited for the safety-net timeout).
            self._wake.clear()
            try:
                sent = await self.publish_pending()
                backoff = 0.05
            except Exception:
                log.exception("outbox relay failed; retrying in %.2fs", backoff)
                sent = 0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            if sent < BATCH:
                # Woken by a commit; the timeout is only a safety net.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def publish_pending(self) -> int:
        async with self._store.claim_outbox(BATCH) as claim:
            rows = claim.rows
            if not rows:
                return 0
            results = await asyncio.gather(*(self._publish(r) for r in rows), return_exceptions=True)
            done = [r.id for r, res in zip(rows, results, strict=True) if res is None and r.id is not None]
            metrics.published(rows, results)
            for row, res in zip(rows, results, strict=True):
                if isinstance(res, BaseException):
                    log.warning("publish of %s %s failed: %r", row.type, row.message_id, res)
            for row in rows:
                self._faults.maybe_crash("after_publish", row.type)
            await claim.mark_sent(done, self._clock())
        self.published += len(done)
        return len(rows)

    async def _publish(self, row: OutboxRow) -> None:
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
        if row.target == Target.PARTY.value:
            assert self._outbound is not None
            await self._outbound.publish(message, routing_key=row.routing_key, mandatory=True)
        else:
            await self._channel.default_exchange.publish(message, routing_key=row.routing_key, mandatory=True)
