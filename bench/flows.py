"""Benchmark of flow 2 (issue 8): N bank-channel flows through a hub running as its own process,
then, in the same run, the same flows through a bare relay: the raw-broker bound.

    python bench/flows.py --flows 20000                 # full speed, then the raw bound
    python bench/flows.py --flows 20000 --rate 100      # a fixed rate (flows started per second)
    python bench/flows.py --flows 5000 --profile --no-raw   # py-spy on the hub, summary to bench/out

Prints flows/s, latency per flow and per hub hop (p50/p90/p99/max), CPU seconds per flow of the
hub, the broker and the bench, the hub's RSS at intervals and its peak, and the ratio hub / raw.
Every wait is bounded; every queue and exchange declared is deleted and the hub is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bench.runs import Side

_REPO = Path(__file__).resolve().parent.parent


class Report:
    """Prints lines, and keeps a copy in a file when asked."""

    def __init__(self, copy: TextIO | None) -> None:
        self._copy = copy

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        if self._copy is not None:
            self._copy.write(line + "\n")
            self._copy.flush()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flows", type=int, default=20_000, help="flows to drive (default 20000)")
    p.add_argument(
        "--rate", type=float, default=None, help="start flows at this rate (flows/s); default full speed"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="most flows in flight (default 256 at full speed, unlimited at a fixed rate)",
    )
    p.add_argument(
        "--rss-every", type=int, default=None, help="print the hub's RSS every N flows (default N/10)"
    )
    p.add_argument("--no-raw", action="store_true", help="skip the raw-broker bound")
    p.add_argument("--no-hub", action="store_true", help="only the raw-broker bound")
    p.add_argument("--no-synced", action="store_true", help="the CRM does not answer sign.synced")
    p.add_argument("--publishers", type=int, default=4, help="confirming channels per party side")
    p.add_argument("--party-prefetch", type=int, default=256, help="prefetch of each party consumer")
    p.add_argument(
        "--relay-prefetch", type=int, default=64, help="prefetch of the raw relay (the hub's default)"
    )
    p.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra SIGNHUB_* setting for the hub (repeatable)",
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="bound of each drive in s (default 60 + flows/25)"
    )
    p.add_argument("--stall", type=float, default=30.0, help="give up when no flow finished for this many s")
    p.add_argument("--profile", action="store_true", help="record the hub with py-spy; summary in bench/out")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--profile-name", default="profile", help="file stem of the profile outputs in bench/out")
    p.add_argument("--out", type=Path, default=None, help="also write what is printed to this file")
    p.add_argument(
        "--hub-commit",
        default=None,
        metavar="REV",
        help="run the hub as committed at REV (e.g. HEAD), not from the working tree",
    )
    p.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    return p


def main(argv: list[str] | None = None) -> int:
    if __package__ in (None, ""):  # run as `python bench/flows.py`: make `bench` importable
        sys.path.insert(0, str(_REPO))
    args = build_parser().parse_args(argv)
    copy = args.out.open("w") if args.out else None
    try:
        return asyncio.run(_bench(args, Report(copy)))
    finally:
        if copy is not None:
            copy.close()


async def _bench(args: argparse.Namespace, report: Report) -> int:
    from bench.runs import describe, run_hub_side, run_raw_side

    run_id = uuid.uuid4().hex[:8]
    await describe(args, report)
    sides: list[Side] = []
    if not args.no_hub:
        sides.append(await run_hub_side(args, report, run_id))
    if not args.no_raw:
        sides.append(await run_raw_side(args, report, run_id))
    _compare(args, report, sides)
    return 0 if all(s.ok == args.flows for s in sides) else 1


def _compare(args: argparse.Namespace, report: Report, sides: list[Side]) -> None:
    if len(sides) != 2:
        return
    hub, raw = sides
    report("")
    report("== hub / raw-broker bound ==")
    report(
        f"  overall: {hub.flows_per_s:.1f} / {raw.flows_per_s:.1f} flows/s = {hub.flows_per_s / raw.flows_per_s:.2f}"
    )
    report(f"  steady (10%-90% of flows): {hub.steady_per_s:.1f} / {raw.steady_per_s:.1f} flows/s = "
           f"{hub.steady_per_s / raw.steady_per_s:.2f}")  # fmt: skip
    if args.rate:
        report(
            f"  (both ran at the fixed rate of {args.rate:g} flows/s: this ratio only says whether both kept up)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
