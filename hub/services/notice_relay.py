"""Passing a bank's notice on to the web hall (flow 1, for banks that notify through the hub).

The bank's notice is taken once (`SigningEntry.take_notice`); passing it on is the hub's own
errand from then on: POSTed, signed with the web hall's key, again with a growing delay until the
web hall acknowledges it (2xx), for as long as the session's window lasts, and at least once. Each
attempt is an event on the session's timeline (`notice.relayed`, with its number and whether the
web hall took it); a notice the web hall never took ends with `notice.undelivered` (the web hall
still learns the outcome from `GET /web/sessions/<id>`). The errand lives in this process: a hub
stopped meanwhile does not take it up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from tenacity import AsyncRetrying, retry_if_exception_type, retry_if_result, wait_exponential, wait_random

from hub.sessions import SigningSession
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.web")

# POST a JSON body to a URL with headers; True when the other side took it (2xx).
Poster = Callable[[str, bytes, Mapping[str, str]], Awaitable[bool]]
FIRST_DELAY_S = 0.5  # then twice as long each time, at most MAX_DELAY_S; plus up to FIRST_DELAY_S at random
MAX_DELAY_S = 60.0


class NoticeRelay:
    """The notices being passed on, one task each (`settled` waits for them, `close` ends them)."""

    def __init__(self, store: Store, clock: Callable[[], datetime], post: Poster) -> None:
        self._store, self._clock, self._post = store, clock, post
        self._errands: set[asyncio.Task[None]] = set()

    def pass_on(self, session: SigningSession, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Starts passing the notice on; returns at once (the bank is answered meanwhile)."""
        task = asyncio.create_task(
            self._until_taken(session, url, body, headers), name=f"notice {session.session_id}"
        )
        self._errands.add(task)
        task.add_done_callback(self._errands.discard)

    async def settled(self) -> None:
        """Waits until every notice under way was taken by its web hall or given up."""
        while self._errands:
            await asyncio.wait(set(self._errands))

    async def close(self) -> None:
        for task in self._errands:
            task.cancel()
        for task in list(self._errands):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _until_taken(
        self, session: SigningSession, url: str, body: bytes, headers: Mapping[str, str]
    ) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda taken: not taken) | retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=FIRST_DELAY_S, max=MAX_DELAY_S) + wait_random(0, FIRST_DELAY_S),
            stop=lambda _: self._clock() >= session.expires_at,  # checked after an attempt: there is one
            retry_error_callback=lambda _: False,
        )  # fmt: skip
        attempts = 0

        async def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            taken = await self._post(url, body, headers)
            await self._event(session, "notice.relayed", {"attempt": attempts, "delivered": taken})
            return taken

        try:
            if not await retrying(attempt):
                log.warning("session %s: the web hall did not take the bank's notice (%d attempts)",
                            session.session_id, attempts)  # fmt: skip
                await self._event(session, "notice.undelivered", {"attempts": attempts})
        except Exception:  # the store failed as the window closed: nothing is left to try
            log.exception("session %s: passing the bank's notice on failed", session.session_id)

    async def _event(self, session: SigningSession, event: str, detail: dict[str, object]) -> None:
        async with self._store.unit_of_work() as uow:
            await uow.add_event(self._clock(), event, flow_key=session.key, party=f"web.{session.hall}",
                                detail={"result": session.notice, **detail})  # fmt: skip
