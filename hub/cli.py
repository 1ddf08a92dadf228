"""The `signhub` command: parses arguments and hands over to the composition root."""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("run", "simulate", "demo", "asyncapi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the hub: consumers, outbox relay, timers, HTTP endpoints")
    sub.add_parser("simulate", help="run the simulators of banks, CRMs and BOSS as outside parties")
    demo = sub.add_parser("demo", help="hub and simulators together, driving real flows; prints a summary")
    demo.add_argument("--flows", type=int, default=20, help="happy-path signings to drive")
    sub.add_parser("asyncapi", help="print the AsyncAPI document generated from contracts/")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"signhub {args.command}: not wired yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
