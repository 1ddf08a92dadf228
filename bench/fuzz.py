"""Fuzzing a running hub through the real broker with hypothesis-made inbound messages.

    python -m bench.fuzz --inputs 10000          # long mode
    python -m bench.fuzz --inputs 300 --seed 3   # what the test suite runs

Each input (bench/fuzz_inputs.py) is published to the hub's inbound exchange as a party would,
and carries its own label (bench/fuzz_expect.py): what the contract says must follow, from how the
generator made it, never from the hub's classifier. Everything the hub sends back is judged against
it (bench/fuzz_judge.py): the refusal's dead copy and `message.rejected` (reason and recipient), the
answer to an accepted input, never two refusals. The store must show no inbox row of a refused
input and one of every accepted input, no flow but those accepted sign.requests opened, no
agreement; the hub must stay up. Prints the count, the outcome classes and the problems.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from bench.fault_hub import AMQP_URL, HubConfig, HubUnderFault, delete_hub_topology, free_port, new_prefix
from bench.fault_hub import store_rows as rows
from bench.fuzz_expect import Expect
from bench.fuzz_inputs import BANKS, PROVINCES, FuzzInput, fuzz_input
from bench.fuzz_judge import Verdict, Watcher, judge
from bench.provenance import commit_measured

PARTIES = [f"bank.{b}" for b in BANKS] + [f"{k}.{p}" for p in PROVINCES for k in ("crm", "boss")]
# A silent CRM is asked twice, a second each time, so that every sign.request is answered in a run
# (CRM_TIMEOUT): the fuzzer's CRMs never answer a verify.request.
CRM_TIMEOUT_S, CRM_ASKS = 1.0, 2


def draw_inputs(n: int, seed: int) -> list[FuzzInput]:
    """`n` inputs drawn by hypothesis (generation only: nothing fails, nothing shrinks)."""
    out: list[FuzzInput] = []

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(fuzz_input())
    def collect(given_input: FuzzInput) -> None:
        out.append(given_input)

    while len(out) < n:  # hypothesis may stop early once it has seen enough distinct inputs
        collect()
    return out[:n]


def broker_inputs(n: int, seed: int) -> list[FuzzInput]:
    """The inputs of a broker run. aiormq gives a message without a message_id (or with an empty one)
    a random one: over the broker such an input has a valid id, and its label says so. The edge's
    answer to a missing id is fuzzed in the unit test."""
    return [replace(i, mid_mode="valid", kind=i.kind.replace("+message_id", "+message_id_given"))
            if i.mid_mode in ("missing", "empty") else i for i in draw_inputs(n, seed)]  # fmt: skip


@dataclass
class FuzzReport:
    inputs: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    made: Counter[str] = field(default_factory=Counter)  # how the inputs were spoilt
    problems: list[str] = field(default_factory=list)
    mismatches: int = 0  # inputs with at least one problem
    hub_up: bool = False
    wall_s: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"signhub fuzz: {self.inputs} inputs through the broker to a running hub",
            "inputs by how they were made (body / envelope):",
            "  " + ", ".join(f"{name} {n}" for name, n in sorted(self.made.items())),
            "outcome classes:",
            *(f"  {name:<58} {n}" for name, n in sorted(self.classes.items())),
            f"inputs judged by their own label: {self.inputs}; mismatches: {self.mismatches}",
            f"hub up and healthy afterwards: {'yes' if self.hub_up else 'NO'}",
            f"problems: {len(self.problems)}" + "".join(f"\n  {p}" for p in self.problems[:20]),
            f"wall time: {self.wall_s:.1f} s",
        ]


def outcome_class(e: Expect) -> str:
    if not e.accepted:
        return f"refused {e.reason}" + (" (for what the hub holds)" if e.needs_state else "")
    return f"accepted, answered with {'/'.join(e.answers)}" if e.answers else "accepted, no answer due"


async def run_fuzz(n: int, seed: int, workdir: Path, settle_s: float = 300.0) -> FuzzReport:
    began, report = time.monotonic(), FuzzReport(inputs=n)
    inputs = broker_inputs(n, seed)
    labelled = [(i.message_id(k) or "", i.expect) for k, i in enumerate(inputs)]
    for i, (_, e) in zip(inputs, labelled, strict=True):
        body, _, envelope = i.kind.partition("+")
        report.made[f"body:{body}"] += 1
        report.made[f"envelope:{envelope or 'ok'}"] += 1
        report.classes[outcome_class(e)] += 1
    prefix = new_prefix("fuzz")
    config = HubConfig(prefix, str(workdir / "hub.db"), workdir, free_port(), crm_timeout_s=CRM_TIMEOUT_S,
                       extra={"SIGNHUB_CRM_ASKS": str(CRM_ASKS)})  # fmt: skip
    hub = HubUnderFault(config)
    watcher: Watcher | None = None
    try:
        await hub.start()
        watcher = await Watcher.start(AMQP_URL, prefix, PARTIES)
        await watcher.publish(inputs)
        await watcher.settle(lambda seen: not judge(labelled, seen).problems(), settle_s)
        report.hub_up = hub.proc is not None and hub.proc.returncode is None and await hub.healthy()
        verdict = judge(labelled, list(watcher.seen))
        await _check_store(verdict, inputs, labelled, str(workdir / "hub.db"))
    finally:
        if watcher is not None:
            await watcher.close()
        await hub.stop()
        await delete_hub_topology(prefix)
    if not report.hub_up:
        verdict.general.append("the hub is down or its health endpoint does not answer")
    report.problems, report.mismatches = verdict.problems(), verdict.mismatches
    report.wall_s = time.monotonic() - began
    return report


async def _check_store(
    verdict: Verdict, inputs: list[FuzzInput], labelled: list[tuple[str, Expect]], store: str
) -> None:
    """What the hub recorded: an inbox row per accepted input and none per refused one, flows only
    for accepted sign.requests, no agreement (no CRM ever approved)."""
    inbox = {(str(s), str(m)) for s, m in await rows(store, "SELECT sender, message_id FROM inbox")}
    flows = {(str(b), str(r)) for b, r in await rows(store, "SELECT bank, request_id FROM flows")}
    requested: set[tuple[str, str]] = set()
    for k, (i, (mid, e)) in enumerate(zip(inputs, labelled, strict=True)):
        sender = i.made.sender
        if e.accepted and (sender, mid) not in inbox:
            verdict.by_input[k].append("accepted but not recorded in the inbox")
        elif not e.accepted and sender is not None and (sender, mid) in inbox:
            verdict.by_input[k].append("refused but recorded in the inbox")
        if e.accepted and i.made.type == "sign.request" and sender is not None and i.made.body is not None:
            requested.add((sender.split(".", 1)[1], str(i.made.body["request_id"])))
    if flows - requested:
        verdict.general.append(
            f"flows not opened by an accepted sign.request: {sorted(flows - requested)[:5]}"
        )
    if (agreements := (await rows(store, "SELECT count(*) FROM agreements"))[0][0]) != 0:
        verdict.general.append(f"{agreements} agreements exist after a fuzz run (no flow was ever approved)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs to publish (default 10,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="signhub-fuzz-"))
    report = asyncio.run(run_fuzz(args.inputs, args.seed, workdir))
    text = "\n".join([f"$ python -m bench.fuzz {' '.join(argv or sys.argv[1:])}",
                      f"commit measured: {commit_measured()}", *report.lines()]) + "\n"
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if report.problems:
        print(f"hub log kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
