"""`signhub ops ...`: the console's operations from a shell, on the store and broker the hub uses
(they may run while the hub runs: what an action queues, the hub's relay publishes).

An action names its operator (`--as NAME`) and proves it with that operator's password
(`SIGNHUB_OPS_PASSWORD`, else asked); the role checks are the console's own. Creating the first
operator (`ops operator add`) needs no sign-in: whoever runs it already holds the store.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.bootstrap import build_deps, open_store
from hub.broker_connection import connect_broker
from hub.console import approvals, audit, cases, dead_letters
from hub.console.auth import AuthRefused, Operator, Role, create_operator, password_matches
from hub.console.context import Console
from hub.flows.duplicates import Resolution
from hub.messaging.topology import HubNames
from hub.services.operations import OperationRefused
from hub.settings import Settings


def add_parser(sub: Any) -> None:
    ops = sub.add_parser("ops", help="operations: operators, manual cases, dead messages, audit log")
    act = ops.add_subparsers(dest="action", required=True)
    op = act.add_parser("operator", help="operators: add NAME --role ROLE | list")
    op.add_argument("verb", choices=["add", "list"])
    op.add_argument("name", nargs="?")
    op.add_argument("--role", choices=[r.value for r in Role], default="viewer")
    c = act.add_parser("cases", help="manual cases, oldest first")
    for flag in ("--province", "--bank", "--state"):
        c.add_argument(flag)
    c.add_argument("--min-age-min", type=float, help="waited at least this many minutes")
    act.add_parser("case", help="one case with both agreements side by side (JSON)").add_argument("case_id")
    r = act.add_parser("resolve", help="KEEP_EXISTING now, or propose REPLACE for a second approver")
    r.add_argument("case_id")
    r.add_argument("resolution", choices=[x.value for x in Resolution])
    act.add_parser("approvals", help="proposals waiting for a second operator")
    for verb in ("approve", "refuse"):
        act.add_parser(verb, help=f"{verb} a proposal").add_argument("approval_id")
    d = act.add_parser("dead", help="refused messages (grouped with --groups)")
    d.add_argument("--groups", action="store_true")
    d.add_argument("--reason-code", dest="reason_code")
    d.add_argument("--sender")
    act.add_parser("replay", help="replay a refused message's stored original").add_argument("dead_id")
    act.add_parser("discard", help="discard a refused message").add_argument("dead_id")
    a = act.add_parser("audit", help="the audit log: list, --verify the hash chain, --export csv|jsonl")
    a.add_argument("--verify", action="store_true")
    a.add_argument("--export", choices=["csv", "jsonl"])
    for p in (r, d, a, c, op, act.choices["approve"], act.choices["refuse"], act.choices["replay"],
              act.choices["discard"]):  # fmt: skip
        p.add_argument(
            "--as", dest="actor", help="the operator acting (password: SIGNHUB_OPS_PASSWORD or asked)"
        )
        p.add_argument("--reason", default="", help="why (required to resolve, refuse and discard)")


@asynccontextmanager
async def open_console(settings: Settings) -> AsyncIterator[Console]:
    """The console on the configured store and broker (what `build_hub` wires, without consumers)."""
    store = await open_store(settings)
    deps = await build_deps(settings, store)
    connection = await connect_broker(settings)
    try:
        yield Console(store, deps, HubNames(deps.names), connection, group_rate=settings.ops_group_rate)
    finally:
        await connection.close()
        await store.close()


async def _operator(console: Console, name: str | None) -> Operator:
    if not name:
        raise AuthRefused("name the acting operator with --as NAME")
    password = os.environ.get("SIGNHUB_OPS_PASSWORD") or getpass.getpass(f"password of {name}: ")
    row = await console.store.console().credentials(name)
    if not row or row["disabled"] or not password_matches(row["password_hash"], password):
        raise AuthRefused("wrong name or password")
    return Operator(name, Role(row["role"]))


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


async def run_ops(settings: Settings, args: argparse.Namespace) -> int:
    try:
        async with open_console(settings) as console:
            return await _dispatch(console, args)
    except PermissionError as exc:
        print(f"signhub ops: refused: {exc}", file=sys.stderr)
        return 3
    except (OperationRefused, AuthRefused, LookupError, ValueError) as exc:
        print(f"signhub ops: {exc}", file=sys.stderr)
        return 1


async def _dispatch(console: Console, args: argparse.Namespace) -> int:
    action, now = args.action, console.deps.clock()
    if action == "operator" and args.verb == "add":
        if not args.name:
            raise ValueError("ops operator add NAME --role ROLE")
        password = os.environ.get("SIGNHUB_OPS_PASSWORD") or getpass.getpass(f"new password of {args.name}: ")
        await create_operator(console.store, args.name, Role(args.role), password, by="cli", now=now)
        await audit.record(console.store, now, "cli", "operator.create", target=args.name,
                           after={"name": args.name, "role": args.role})  # fmt: skip
        print(f"operator {args.name} ({args.role}) created")
        return 0
    op = await _operator(console, args.actor)
    if action == "operator":
        if not op.role.allows(Role.ADMIN):
            raise PermissionError("listing operators needs admin")
        _print(await console.store.console().operators())
    elif action == "cases":
        age = args.min_age_min * 60 if args.min_age_min else None
        _print(await cases.list_cases(console, province=args.province, bank=args.bank, min_age_s=age,
                                      state=args.state))  # fmt: skip
    elif action == "case":
        _print(await cases.case_page(console, args.case_id))
    elif action == "resolve":
        _print(await cases.resolve(console, op, args.case_id, Resolution(args.resolution), args.reason))
    elif action == "approvals":
        _print(await approvals.pending(console))
    elif action in ("approve", "refuse"):
        _print(
            await approvals.decide(
                console, op, args.approval_id, approve=action == "approve", reason=args.reason
            )
        )
    elif action == "dead":
        rows = await (dead_letters.groups(console) if args.groups else
                      dead_letters.listing(console, reason=args.reason_code, sender=args.sender))  # fmt: skip
        _print(rows)
    elif action == "replay":
        _print(await dead_letters.replay_as(console, op, args.dead_id))
    elif action == "discard":
        _print(await dead_letters.discard(console, op, args.dead_id, args.reason))
    else:
        return await _audit(console, args)
    return 0


async def _audit(console: Console, args: argparse.Namespace) -> int:
    rows = await audit.entries(console.store)
    if args.verify:
        verdict = audit.verify_rows(rows)
        print(f"audit log {'intact' if verdict.ok else 'TAMPERED'}: {verdict.rows} rows"
              + ("" if verdict.ok else f"; first bad row {verdict.first_bad_seq}: {verdict.problem}"))  # fmt: skip
        return 0 if verdict.ok else 4
    if args.export:
        sys.stdout.write(audit.export_csv(rows) if args.export == "csv" else audit.export_jsonl(rows))
        return 0
    _print(rows[-50:])
    return 0
