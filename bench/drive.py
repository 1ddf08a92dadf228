"""Starting flows at full speed (a window of flows in flight) or at a fixed rate, and waiting for
them with bounds: a whole-run timeout and a stall timeout, each reporting what is missing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.parties import Timeline

# Where a flow that did not finish stopped, by the first stamp it lacks.
_WAITING_FOR = (("vreq_rcv", "verify.request at the CRM"), ("sresp_rcv", "sign.response at the bank"),
                ("result_rcv", "sign.result at the bank"), ("notify_rcv", "sign.notify at the CRM"))  # fmt: skip


@dataclass
class DriveResult:
    n: int
    started: int
    ok: int
    failed: int
    first_start: float
    last_done: float
    stopped_early: str | None = None
    late_starts: int = 0
    max_start_lag_s: float = 0.0
    start_errors: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return max(self.last_done - self.first_start, 1e-9)


def missing_by_step(timeline: Timeline, started: int) -> dict[str, int]:
    """For flows started but not done: how many wait for which message."""
    out: dict[str, int] = {}
    for i in range(started):
        if timeline.has("done", i):
            continue
        what = next((w for stamp, w in _WAITING_FOR if not timeline.has(stamp, i)), "its end")
        out[what] = out.get(what, 0) + 1
    return out


class Driver:
    def __init__(self, n: int, *, rate: float | None, window: int,
                 on_progress: Callable[[int], None] | None = None, progress_every: int = 0) -> None:  # fmt: skip
        self.n = n
        self.rate = rate
        self._window = asyncio.Semaphore(window)
        self._on_progress = on_progress
        self._progress_every = progress_every
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ok = 0
        self.failed = 0
        self.started = 0
        self.last_done = 0.0
        self.late_starts = 0
        self.max_start_lag = 0.0
        self.start_errors: list[str] = []

    def on_done(self, i: int, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self.last_done = time.perf_counter()
        self._window.release()
        self._changed.set()
        finished = self.ok + self.failed
        if self._on_progress and self._progress_every and finished % self._progress_every == 0:
            self._on_progress(finished)

    async def run(
        self, start_flow: Callable[[int], Awaitable[None]], timeout_s: float, stall_s: float
    ) -> DriveResult:
        t0 = time.perf_counter()
        starter = asyncio.create_task(self._start_all(start_flow, t0))
        last_count, last_change, stopped = 0, t0, None
        while self.ok + self.failed < self.n:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)
            self._changed.clear()
            now = time.perf_counter()
            if self.ok + self.failed != last_count:
                last_count, last_change = self.ok + self.failed, now
            elif now - last_change > stall_s:
                stopped = f"no flow finished for {stall_s:.0f} s"
                break
            if now - t0 > timeout_s:
                stopped = f"the run took longer than its timeout of {timeout_s:.0f} s"
                break
        starter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starter
        return DriveResult(self.n, self.started, self.ok, self.failed, t0, self.last_done or time.perf_counter(),
                           stopped, self.late_starts, self.max_start_lag, self.start_errors)  # fmt: skip

    async def _start_all(self, start_flow: Callable[[int], Awaitable[None]], t0: float) -> None:
        for i in range(self.n):
            if self.rate:
                target = t0 + i / self.rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._window.locked():
                    self.late_starts += 1
            await self._window.acquire()
            if self.rate:
                self.max_start_lag = max(self.max_start_lag, time.perf_counter() - (t0 + i / self.rate))
            task = asyncio.create_task(self._start_one(start_flow, i))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.started += 1

    async def _start_one(self, start_flow: Callable[[int], Awaitable[None]], i: int) -> None:
        try:
            await start_flow(i)
        except Exception as exc:
            self.start_errors.append(f"flow {i}: {exc!r}")
            self.on_done(i, False)
