"""The broker fuzz of bench/fuzz.py in short mode: a few hundred hypothesis-made inbound messages
through RabbitMQ to a running hub process. Every input the edge refuses gets a dead-queue copy
with its `x-signhub-reason` and, from a known sender, `message.rejected`; it leaves no inbox,
flow or agreement row; the hub stays up and its health endpoint answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz import run_fuzz


@pytest.mark.timeout(180)
async def test_three_hundred_fuzzed_inputs_are_each_refused_with_a_reason_and_the_hub_stays_up(
    tmp_path: Path,
) -> None:
    report = await run_fuzz(300, seed=3, workdir=tmp_path, settle_s=90.0)

    summary = "\n".join(report.lines())
    assert report.problems == [], summary
    assert report.hub_up, summary
    refused = {name for name in report.classes if name.startswith("refused ")}
    assert {"refused INVALID_MESSAGE", "refused UNKNOWN_SENDER", "refused UNAUTHORIZED_SENDER",
            "refused UNKNOWN_TYPE"} <= refused, summary  # fmt: skip
    assert report.classes["accepted by the edge"] > 0, summary
