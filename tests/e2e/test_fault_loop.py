"""The short mode of the scripted fault run (bench/faults.py): the hub process is SIGKILLed at
random, seeded moments under steady bank-channel load and restarted, at least 20 times; every
started flow finishes, no answer comes under a second message_id, no number gets two agreements."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import FaultPlan, run_faults

SHORT = FaultPlan(kills=20, rate=7.0, seed=20, up_s=(0.2, 1.5), drain_s=90.0)


@pytest.mark.timeout(180)
async def test_twenty_kills_under_steady_load_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    report = await run_faults(SHORT, tmp_path)

    summary = "\n".join(report.lines())
    assert report.kills >= 20, summary
    # Flows started depend on how fast the hub restarts (rate x wall time): about 200 here, fewer
    # on a quiet machine; enough that kills land mid-flow is what matters.
    assert report.started >= 100, summary
    assert report.lost == [], summary
    assert report.doubled == [], summary
    assert report.finished == report.started, summary
    assert report.store["numbers with 2+ ACTIVE"] == 0, summary
    assert report.store["ACTIVE"] == report.started, summary
    assert report.refused == 0 and report.store["dead messages"] == 0, summary
