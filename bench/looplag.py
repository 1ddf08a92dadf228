"""The load generator's own event-loop lag: how late a short timer fires while the parties run.
A latency measured at the parties includes it, for the hub and the raw relay alike."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bench.stats import summary_ms

TICK_S = 0.005


class LoopLag:
    def __init__(self) -> None:
        self.late: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick(), name="bench-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.late.append(time.perf_counter() - t0 - TICK_S)

    def line(self) -> str:
        s = summary_ms(self.late)
        return (f"  load generator's event-loop lag (a {TICK_S * 1000:.0f} ms timer, n={int(s['n'])}): "
                f"p50 {s['p50']:.1f}  p99 {s['p99']:.1f}  max {s['max']:.1f} ms")  # fmt: skip
