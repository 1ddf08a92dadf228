"""The `signhub` command: parses arguments and hands over to the composition root."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from hub.logging import configure_logging
from hub.settings import Settings, SettingsError, load_settings

COMMANDS = ("run", "simulate", "demo", "asyncapi", "agreement", "provision", "ops", "recon")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the hub: consumers, outbox relay, timers, HTTP endpoints")
    sim = sub.add_parser("simulate", help="run the simulators of banks, CRMs and BOSS as outside parties")
    sim.add_argument("--seed", type=int, default=7, help="seed of the generated subscribers and accounts")
    sim.add_argument("--recon-every", type=float, default=None, metavar="S",
                     help="every S seconds, banks and provinces reconcile their DAILY files with the hub")  # fmt: skip
    demo = sub.add_parser("demo", help="hub and simulators together, driving real flows; prints a summary")
    demo.add_argument("--flows", type=int, default=20, help="happy-path signings to drive")
    demo.add_argument("--seed", type=int, default=7, help="seed of the generated subscribers and accounts")
    demo.add_argument("--serve", action="store_true",
                      help="keep the hub, simulators and web sites running after the summary (Ctrl-C ends)")  # fmt: skip
    sub.add_parser("asyncapi", help="print the AsyncAPI document generated from contracts/")
    prov = sub.add_parser("provision", help="create one least-privilege broker user per party (rabbitmqctl)")
    prov.add_argument(
        "--out", default="signhub-credentials.csv", help="where to write the passwords (mode 0600)"
    )
    prov.add_argument("--rotate", action="store_true", help="give existing users new passwords")
    prov.add_argument("--delete", action="store_true", help="remove the party users instead")
    prov.add_argument("--rabbitmqctl", default="rabbitmqctl", help="path of rabbitmqctl")
    agreement = sub.add_parser("agreement", help="look up agreements in the store")
    agreement_sub = agreement.add_subparsers(dest="action", required=True)
    show = agreement_sub.add_parser("show", help="an agreement and its timeline across all parties")
    show.add_argument("key", help="a phone number or an agreement_id")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    from hub.console.recon_cli import add_parser as add_recon_parser

    add_recon_parser(sub)
    from hub.console.ops_cli import add_parser as add_ops_parser

    add_ops_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "asyncapi":
        from contracts.asyncapi import dump

        print(dump(load_settings().prefix))
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"signhub: {exc}", file=sys.stderr)
        return 2
    # The demo prints a summary on stdout; its logs stay quiet unless a level was asked for.
    quiet = args.command == "demo" and "SIGNHUB_LOG_LEVEL" not in os.environ
    configure_logging("WARNING" if quiet else settings.log_level)
    if args.command == "run":
        from hub.bootstrap import run_hub

        try:
            return asyncio.run(run_hub(settings))
        except SettingsError as exc:
            print(f"signhub: {exc}", file=sys.stderr)
            return 2
    if args.command == "provision":
        return _provision(settings, args)
    if args.command == "ops":
        from hub.console.ops_cli import run_ops

        return asyncio.run(run_ops(settings, args))
    if args.command == "recon":
        from hub.console.recon_cli import run_recon

        return asyncio.run(run_recon(settings, args))
    if args.command == "agreement":
        from hub.console.agreement_cli import show_agreement

        return asyncio.run(show_agreement(settings, args.key, as_json=args.json))
    if args.command == "simulate":
        from simulators.runner import run_forever

        # EXIT_CODE when the simulators did not work for unready_exit_s: for the supervisor to restart them
        return asyncio.run(run_forever(settings, seed=args.seed, recon_every_s=args.recon_every))
    from hub.demo import run_demo

    try:
        code: int = asyncio.run(run_demo(settings, flows=args.flows, seed=args.seed, serve=args.serve))
    except KeyboardInterrupt:  # `--serve` ends with Ctrl-C; the demo cleaned up on the way out
        return 0
    return code


def _provision(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from contracts.topology import Names
    from hub.parties import Registry
    from hub.provision import grant_for, provision, rabbitmqctl, remove, write_credentials

    names = Names(settings.prefix)
    grants = [grant_for(names, p) for p in Registry.of(settings.banks, settings.provinces).parties()]
    ctl = rabbitmqctl(args.rabbitmqctl)
    if args.delete:
        remove(ctl, grants)
        print(f"removed {len(grants)} party users of prefix {settings.prefix}")
        return 0
    rows = provision(ctl, grants, rotate=args.rotate)
    write_credentials(Path(args.out), rows)
    print(f"provisioned {len(rows)} party users of prefix {settings.prefix}; passwords in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
