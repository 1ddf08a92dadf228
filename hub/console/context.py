"""What every console action gets: the store, the hub's tools, the broker, and the console's rules
(session lifetime, group-action rate, sign-in throttle); and how a copy is taken out of the manual
or dead queue.

The hub never consumes `<prefix>.manual` and `<prefix>.dead` itself (CONTRACT.md): when an
operator resolves a case or replays or discards a message, the console removes that one copy by
`basic.get` through the queue, acknowledging the match and returning every other message it held.
The walk is bounded; a copy not found (already drained with another AMQP tool) changes nothing,
the store stays the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from hub.console.login_guard import LoginGuard
from hub.messaging.topology import HubNames
from hub.services.context import Deps
from hub.store.rows import ts
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.console")
DRAIN_LIMIT = 2000  # messages looked at, at most, to find one copy

CopyMatch = Callable[[AbstractIncomingMessage], bool]


@dataclass
class Console:
    store: Store
    deps: Deps
    hub_names: HubNames
    connection: AbstractRobustConnection
    session_ttl: timedelta = timedelta(hours=8)
    group_rate: float = 5.0  # messages per second when acting on a whole group
    group_limit: int = 200  # messages per group action
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    public_url: str | None = None  # the hub's address as browsers reach it (SIGNHUB_PUBLIC_URL)
    _drain: asyncio.Lock = field(default_factory=asyncio.Lock)

    def now_ts(self) -> str:
        return str(ts(self.deps.clock()))

    async def remove_copy(self, queue: str, match: CopyMatch) -> bool:
        """Acknowledges the first message of `queue` that `match`es; requeues the others it held."""
        async with self._drain:  # two walks at once would each hide messages from the other
            channel = await self.connection.channel()
            held: list[AbstractIncomingMessage] = []
            found = False
            try:
                source = await channel.get_queue(queue, ensure=True)
                for _ in range(DRAIN_LIMIT):
                    message = await source.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    if match(message):
                        await message.ack()
                        found = True
                        break
                    held.append(message)
            finally:
                for message in held:
                    await message.nack(requeue=True)
                await channel.close()
        if not found:
            log.warning("no copy to remove from %s", queue)
        return found


def header(message: AbstractIncomingMessage, name: str) -> str | None:
    value = (message.headers or {}).get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)
