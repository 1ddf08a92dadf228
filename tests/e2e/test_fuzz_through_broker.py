"""The broker fuzz of bench/fuzz.py in short mode: a few hundred hypothesis-made inbound messages
through RabbitMQ to a running hub process, each judged against its own label (what the contract
says must follow from how the generator made it, bench/fuzz_expect.py), never against the hub's
classifier. A refused input gets exactly one dead-queue copy with the label's `x-signhub-reason`
and one `message.rejected` with its `reason_code` on the sender's own queue only (none for an
unknown sender); an accepted one gets its answer and no refusal; the store holds no inbox row of a
refused input, no flow but those accepted requests opened, no agreement; the hub stays up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz import run_fuzz


@pytest.mark.timeout(180)
async def test_three_hundred_fuzzed_inputs_each_end_as_their_own_label_says_and_the_hub_stays_up(
    tmp_path: Path,
) -> None:
    report = await run_fuzz(300, seed=3, workdir=tmp_path, settle_s=90.0)

    summary = "\n".join(report.lines())
    assert report.problems == [] and report.mismatches == 0, summary
    assert report.hub_up, summary
    refused = {name for name in report.classes if name.startswith("refused ")}
    assert {"refused INVALID_MESSAGE", "refused UNKNOWN_SENDER", "refused UNAUTHORIZED_SENDER",
            "refused UNKNOWN_TYPE", "refused NOT_SUPPORTED"} <= refused, summary  # fmt: skip
    answered = sum(n for name, n in report.classes.items() if name.startswith("accepted, answered"))
    assert answered > 0 and report.classes["accepted, no answer due"] > 0, summary
