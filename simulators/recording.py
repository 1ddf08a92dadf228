"""What a simulator received, and bounded waits on it that say what did not arrive.

Tests and scenarios wait on a condition over the records, never by sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage


@dataclass(frozen=True, slots=True)
class Received:
    """One message taken from the party's queue."""

    msg_type: str
    body: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    routing_key: str

    @classmethod
    def of(cls, msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage) -> Received:
        return cls(
            msg_type=msg_type,
            body=body,
            message_id=incoming.message_id,
            correlation_id=incoming.correlation_id,
            routing_key=incoming.routing_key or "",
        )


class Recorder:
    """The received messages of one party, with waits woken on every change."""

    def __init__(self, party: str) -> None:
        self.party = party
        self.received: list[Received] = []
        self._changed = asyncio.Condition()

    def of_type(self, msg_type: str) -> list[Received]:
        return [r for r in self.received if r.msg_type == msg_type]

    async def add(self, item: Received) -> None:
        self.received.append(item)
        await self.changed()

    async def changed(self) -> None:
        """Wake the waits: call after any change a predicate may look at."""
        async with self._changed:
            self._changed.notify_all()

    # The wait owns its timeout so that the error can name what did not arrive.
    async def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        """Return once `predicate()` holds; `TimeoutError` naming `what` after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            seen = ", ".join(r.msg_type for r in self.received[-10:]) or "nothing"
            raise TimeoutError(
                f"{self.party}: {what} did not arrive within {timeout:g} s (last received: {seen})"
            ) from None
