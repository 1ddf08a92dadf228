"""The watch (hub.liveness): checks by doing, says each change once, repairs, and gives up in time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.liveness import Part, PartDown, Watch


class Switch:
    """A part whose check fails while `down` says why; counts its checks and repairs."""

    def __init__(self) -> None:
        self.down: str | None = None
        self.checks = 0
        self.repairs = 0

    async def check(self) -> None:
        self.checks += 1
        if self.down:
            raise PartDown(self.down)

    async def repair(self) -> None:
        self.repairs += 1
        self.down = None


async def test_each_part_reports_none_when_it_works_and_its_reason_when_it_does_not() -> None:
    ok, broken = Switch(), Switch()
    broken.down = "its channel is closed"

    async def raises() -> None:
        raise RuntimeError("Connection was not opened")

    watch = Watch([Part("a", ok.check), Part("b", broken.check), Part("c", raises)])
    assert await watch.check_now() == {"a": None, "b": "its channel is closed",
                                       "c": "RuntimeError: Connection was not opened"}  # fmt: skip


async def test_a_check_that_does_not_answer_in_time_counts_as_down() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    watch = Watch([Part("hung", hangs)], timeout_s=0.05)
    assert await watch.check_now() == {"hung": "no answer within 0.05 s"}


async def test_a_state_change_is_logged_once_however_many_checks_see_it(caplog: pytest.LogCaptureFixture) -> None:
    part = Switch()
    watch = Watch([Part("relay", part.check)])
    caplog.set_level(logging.WARNING, logger="signhub.liveness")
    part.down = "closed"
    for _ in range(3):
        await watch.observe(await watch.check_now())
    part.down = None
    for _ in range(2):
        await watch.observe(await watch.check_now())
    assert [r.getMessage() for r in caplog.records] == ["relay does not work: closed", "relay works again"]


async def test_a_part_is_asked_to_repair_after_its_second_failure_in_a_row() -> None:
    part = Switch()
    watch = Watch([Part("consumer", part.check, part.repair)])
    part.down = "no consumer"
    await watch.observe(await watch.check_now())
    assert part.repairs == 0  # one failure may be a moment of reconnection: leave it to the library
    await watch.observe(await watch.check_now())
    assert part.repairs == 1
    assert await watch.check_now() == {"consumer": None}


async def test_run_returns_once_the_process_was_not_ready_for_the_exit_time() -> None:
    now = [0.0]
    part = Switch()
    part.down = "broker away"

    def clock() -> float:
        now[0] += 1.0  # each look at the clock is a second later
        return now[0]

    watch = Watch([Part("broker", part.check)], every_s=0.0, exit_after_s=10.0, clock=clock)
    await asyncio.wait_for(watch.run(), 5.0)
    assert watch.unready_since is not None and part.checks >= 5


async def test_readiness_coming_back_starts_the_exit_time_again() -> None:
    part = Switch()
    now = [0.0]
    watch = Watch([Part("broker", part.check)], exit_after_s=10.0, clock=lambda: now[0])
    part.down = "away"
    await watch.observe(await watch.check_now())
    now[0] = 8.0
    part.down = None
    await watch.observe(await watch.check_now())
    assert watch.unready_since is None
    part.down = "away again"
    now[0] = 9.0
    await watch.observe(await watch.check_now())
    assert watch.unready_since == 9.0
