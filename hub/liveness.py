"""Whether a process's broker work is working, found by doing it, and what happens when it is not.

A robust connection reconnects by itself, but a part can stay broken after it did: a consumer the
library did not restore, a channel still closed. So "connected" proves nothing. Each part has a
check that performs a small real operation on that part's own channel, bounded in time (a passive
declare that must count a consumer, a round trip on the relay's channel). The watch runs them
every `every_s`:
- it logs once per change of a part's state, and keeps `signhub_part_up{part}` and
  `signhub_ready` current;
- a part that failed twice in a row and has a `repair` is asked to repair itself (the inbound
  consumer consumes again on a new channel);
- after `exit_after_s` without every part working it stops waiting (`run` returns), and the
  process exits non-zero so that its supervisor restarts it.
`/readyz` runs the same checks on each request (`check_now`), not a flag set at start.
The hub (`hub.bootstrap`) and the simulators (`simulators.runner`) both use it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Gauge

log = logging.getLogger("signhub.liveness")

PART_UP = Gauge("signhub_part_up", "1 while a part of the process works (checked by doing), else 0", ["part"])
READY = Gauge("signhub_ready", "1 while every part of the process works, else 0")
UNREADY_SINCE = Gauge("signhub_unready_seconds", "seconds since the process stopped being ready (0: ready)")
EXIT_CODE = 3  # `signhub run` / `signhub simulate` exit with it when the watch gives up


class PartDown(Exception):
    """A check's verdict: the part does not work, for the reason given."""


Check = Callable[[], Awaitable[None]]
Repair = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Part:
    name: str
    check: Check  # returns when the part works; raises (PartDown or anything) when it does not
    repair: Repair | None = None


class Watch:
    def __init__(
        self,
        parts: list[Part],
        *,
        every_s: float = 2.0,
        exit_after_s: float = 120.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parts = parts
        self._every_s = every_s
        self._exit_after_s = exit_after_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._down: dict[str, str] = {}  # part -> reason, as last logged
        self._failures: dict[str, int] = {}
        self.unready_since: float | None = None

    async def check_now(self) -> dict[str, str | None]:
        """Each part's state now: None where it works, else why not."""
        results = await asyncio.gather(*(self._check(p) for p in self.parts))
        return {p.name: r for p, r in zip(self.parts, results, strict=True)}

    async def _check(self, part: Part) -> str | None:
        try:
            await asyncio.wait_for(part.check(), self._timeout_s)
        except TimeoutError:
            return f"no answer within {self._timeout_s:g} s"
        except Exception as exc:
            return str(exc) if isinstance(exc, PartDown) else f"{type(exc).__name__}: {exc}"
        return None

    async def run(self) -> None:
        """Checks until the process has not been ready for `exit_after_s`; then returns."""
        while True:
            await self.observe(await self.check_now())
            down_for = 0.0 if self.unready_since is None else self._clock() - self.unready_since
            if self.unready_since is not None and down_for >= self._exit_after_s:
                why = "; ".join(f"{k}: {v}" for k, v in self._down.items())
                log.error("not ready for %.0f s (%s): giving up so that the supervisor restarts the process",
                          down_for, why)  # fmt: skip
                return
            await asyncio.sleep(self._every_s)

    async def observe(self, states: dict[str, str | None]) -> None:
        """Logs and counts what changed, and asks parts that failed twice in a row to repair."""
        now = self._clock()
        for part in self.parts:
            reason = states[part.name]
            PART_UP.labels(part.name).set(0 if reason else 1)
            self._log_change(part.name, reason)
            self._failures[part.name] = self._failures.get(part.name, 0) + 1 if reason else 0
            if reason and part.repair is not None and self._failures[part.name] >= 2:
                await self._repair(part)
        ready = not any(states.values())
        if ready:
            self.unready_since = None
        elif self.unready_since is None:
            self.unready_since = now
        READY.set(1 if ready else 0)
        UNREADY_SINCE.set(0 if self.unready_since is None else now - self.unready_since)

    def _log_change(self, name: str, reason: str | None) -> None:
        before = self._down.get(name)
        if reason is None and before is not None:
            del self._down[name]
            log.warning("%s works again", name)
        elif reason is not None and before is None:
            self._down[name] = reason
            log.error("%s does not work: %s", name, reason)

    async def _repair(self, part: Part) -> None:
        assert part.repair is not None
        try:
            await asyncio.wait_for(part.repair(), self._timeout_s)
            log.warning("%s repaired itself", part.name)
        except Exception as exc:  # tried again at the next check; its state change was logged
            log.debug("%s could not repair itself yet: %r", part.name, exc)
