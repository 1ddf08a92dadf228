"""Scripted fault run: steady bank-channel load while the hub is SIGKILLed at random (seeded)
moments and restarted, or while the broker is restarted; then counts what was lost or doubled.

    python -m bench.faults --kills 100                  # long mode (SQLite store)
    python -m bench.faults --kills 20 --store postgres  # on a fresh PostgreSQL database
    python -m bench.faults --kills 0 --broker-restarts 10 --rate 40   # rabbitmqctl stop_app / start_app
    python -m bench.faults --kills 0 --connection-cuts 5               # rabbitmqctl close_all_connections

Every started flow must finish (the bank gets `sign.result` ACTIVE, the CRM `sign.notify`); a
repeated answer must carry the same `message_id`; the store must hold one ACTIVE agreement per
number. The broker modes run on a RabbitMQ node of their own (bench.broker_node), started for the
run and deleted after it, so the machine's broker and whoever uses it are left alone. For each
restart they print how long the broker was away, whether `/readyz` failed meanwhile, and how soon
after the broker was back the first new flow was answered (`sign.response`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.broker_node import BrokerNode, broker_node
from bench.fault_hub import (
    AMQP_URL,
    BANKS,
    PROVINCES,
    HubConfig,
    HubUnderFault,
    delete_hub_topology,
    free_port,
    hub_store,
    new_prefix,
    store_rows,
)  # fmt: skip
from bench.provenance import commit_measured
from simulators.steady import SteadyParties

_REPEATABLE = {"verify.request"}  # a silent CRM is asked again under a new message_id: not doubled


@dataclass
class FaultPlan:
    kills: int = 100
    broker_restarts: int = 0
    connection_cuts: int = 0  # rabbitmqctl close_all_connections
    rate: float = 6.0  # flows started per second, whether the hub is up or not
    store: str = "sqlite"
    seed: int = 7
    up_s: tuple[float, float] = (0.2, 2.5)  # how long a started hub lives before its kill
    early_kills: float = 0.15  # share of kills that hit the hub while it starts
    repeats: float = 0.05  # share of party messages sent twice under one message_id
    crm_timeout_s: float = 600.0  # short: CRM timers fire across kills; a flow may end CRM_TIMEOUT
    drain_s: float = 180.0


@dataclass
class Outage:
    """One broker restart (or connection cut) as the parties and `/readyz` saw it."""

    what: str
    away_s: float  # from stop_app to start_app's return (0 for a cut)
    readyz_failed: bool  # /readyz answered "not ready" at least once meanwhile
    first_answer_s: float | None  # from the broker's return to the first new flow's sign.response
    ready_again_s: float | None  # from the broker's return to /readyz 200 again

    def line(self) -> str:
        first = "none within 120 s" if self.first_answer_s is None else f"{self.first_answer_s:.2f} s"
        ready = "not within 120 s" if self.ready_again_s is None else f"{self.ready_again_s:.2f} s"
        return (f"  {self.what}: broker away {self.away_s:.2f} s, /readyz failed meanwhile: "
                f"{'yes' if self.readyz_failed else 'NO'}, first new flow answered after {first}, "
                f"/readyz ready again after {ready}")  # fmt: skip


@dataclass
class FaultReport:
    plan: FaultPlan
    started: int = 0
    finished: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    kills: int = 0
    early_kills: int = 0
    broker_restarts: int = 0
    duplicate_deliveries: int = 0
    refused: int = 0
    store: dict[str, int] = field(default_factory=dict)
    publish_retries: int = 0
    repeats_sent: int = 0
    timed_out: int = 0
    wall_s: float = 0.0
    outages: list[Outage] = field(default_factory=list)
    commit: str = ""

    def lines(self) -> list[str]:
        p = self.plan
        firsts = [o.first_answer_s for o in self.outages if o.first_answer_s is not None]
        outages = [
            f"broker outages: {len(self.outages)}; /readyz failed in {sum(o.readyz_failed for o in self.outages)}; "
            f"first new answer after the broker's return: "
            + (f"median {sorted(firsts)[len(firsts) // 2]:.2f} s, max {max(firsts):.2f} s" if firsts else "none"),
            *(o.line() for o in self.outages),
        ] if self.outages else []  # fmt: skip
        return [
            f"commit measured: {self.commit}",
            f"signhub fault run: store {p.store}, seed {p.seed}, {len(BANKS)} banks x {len(PROVINCES)} provinces, "
            f"load {p.rate:g} flows/s, {p.repeats:.0%} of party messages sent twice",
            f"kills (SIGKILL) and restarts: {self.kills} ({self.early_kills} while the hub was starting); "
            f"broker restarts: {self.broker_restarts}; connection cuts: {p.connection_cuts}",
            f"flows started: {self.started}",
            f"flows finished: {self.finished} (bank got sign.result ACTIVE, CRM got sign.notify; "
            f"or sign.response CRM_TIMEOUT: {self.timed_out})",
            f"flows lost: {len(self.lost)}" + (f" e.g. {self.lost[:5]}" if self.lost else ""),
            f"flows doubled: {len(self.doubled)}" + (f" e.g. {self.doubled[:5]}" if self.doubled else ""),
            f"duplicate deliveries (same message_id): {self.duplicate_deliveries}",
            f"refusals (message.rejected): {self.refused}",
            "store: " + ", ".join(f"{k} {v}" for k, v in self.store.items()),
            f"party messages sent twice on purpose: {self.repeats_sent}; sent again for want of a confirm: "
            f"{self.publish_retries}",
            f"wall time: {self.wall_s:.1f} s",
            *outages,
        ]


async def run_faults(plan: FaultPlan, workdir: Path) -> FaultReport:
    if plan.broker_restarts or plan.connection_cuts:
        async with broker_node() as node:
            return await run_faults_on(plan, workdir, node)
    return await run_faults_on(plan, workdir, None)


async def run_faults_on(plan: FaultPlan, workdir: Path, node: BrokerNode | None) -> FaultReport:
    """The run on `node` (restarted and cut as planned), or on the machine's broker (kills only)."""
    rng, report, began = random.Random(plan.seed), FaultReport(plan, commit=commit_measured()), time.monotonic()
    prefix = new_prefix("fault")
    url = node.url if node is not None else AMQP_URL
    async with hub_store(plan.store, workdir) as store:
        hub = HubUnderFault(HubConfig(prefix, store, workdir, free_port(), plan.crm_timeout_s, amqp_url=url))
        parties: SteadyParties | None = None
        try:
            await hub.start()
            parties = await SteadyParties.start(url, prefix, BANKS, PROVINCES, plan.repeats)
            stop = asyncio.Event()
            load = asyncio.create_task(_steady_load(parties, plan.rate, stop))
            try:
                await _kill_loop(hub, plan, rng, report)
                if node is not None:
                    await _broker_loop(hub, node, parties, plan, rng, report)
            finally:
                stop.set()
                await load
            await _drain(parties, store, plan.drain_s)
            await _count(parties, store, report)
        finally:
            if parties is not None:
                await parties.close()
            await hub.stop()
            await delete_hub_topology(prefix, url)
    report.wall_s = time.monotonic() - began
    return report


async def _steady_load(parties: SteadyParties, rate: float, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        phone = f"{'138' if n % 4 < 2 else '139'}{n:08d}"
        await parties.sign(BANKS[n % 2], phone)
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / rate)


async def _kill_loop(hub: HubUnderFault, plan: FaultPlan, rng: random.Random, report: FaultReport) -> None:
    for _ in range(plan.kills):
        if rng.random() < plan.early_kills:
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            report.early_kills += not hub.started
        else:
            await hub.wait_started()
            await asyncio.sleep(rng.uniform(*plan.up_s))
        await hub.kill()
        report.kills += 1
        await hub.spawn()
    await hub.wait_started()


async def _broker_loop(
    hub: HubUnderFault, node: BrokerNode, parties: SteadyParties, plan: FaultPlan, rng: random.Random,
    report: FaultReport,
) -> None:
    """stop_app / start_app (then connection cuts) under load: the hub must carry on by itself."""
    cuts = ["cut"] * plan.connection_cuts
    for what in ["restart"] * plan.broker_restarts + cuts:
        await asyncio.sleep(rng.uniform(2.0, 6.0))
        watching = asyncio.create_task(_readyz_fails(hub))
        away_from = time.monotonic()
        if what == "restart":
            await node.stop_app()
            await asyncio.sleep(rng.uniform(1.0, 5.0))
            await node.start_app()
            report.broker_restarts += 1
        else:
            await node.close_all_connections()
        back = time.monotonic()
        first, ready = await asyncio.gather(_first_new_answer(parties, back), _ready_again(hub, back))
        watching.cancel()
        failed = await asyncio.gather(watching, return_exceptions=True)
        report.outages.append(Outage(f"{what} {len(report.outages) + 1}", back - away_from, failed[0] is True,
                                     first, ready))  # fmt: skip
        if hub.proc is None or hub.proc.returncode is not None:
            raise RuntimeError(f"the hub exited after a broker {what}; see {hub.log_path}")


async def _readyz_fails(hub: HubUnderFault) -> bool:
    """True once /readyz answered "not ready" (runs until cancelled, or until it did)."""
    while True:
        if not await hub.ready():
            return True
        await asyncio.sleep(0.2)


async def _first_new_answer(parties: SteadyParties, since: float, within_s: float = 120.0) -> float | None:
    """Seconds from `since` to the sign.response of the first flow started after it."""
    while time.monotonic() - since < within_s:
        answered = [parties.answered_at[r] for r, t in parties.started_at.items()
                    if t >= since and r in parties.answered_at]  # fmt: skip
        if answered:
            return min(answered) - since
        await asyncio.sleep(0.05)
    return None


async def _ready_again(hub: HubUnderFault, since: float, within_s: float = 120.0) -> float | None:
    while time.monotonic() - since < within_s:
        if await hub.ready():
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def _drain(parties: SteadyParties, store: str, drain_s: float) -> None:
    """Until every flow finished and the outbox is empty (bounded): late repeats are counted too."""
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        done = all(_finished(parties, rid) for rid in parties.flows)
        if done and (await store_rows(store, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"))[0][0] == 0:
            await asyncio.sleep(1.0)  # deliveries in flight reach the parties
            return
        await asyncio.sleep(0.5)


def _finished(parties: SteadyParties, rid: str) -> bool:
    """Signed (ACTIVE at the bank, notified to the CRM) or, with a short CRM timeout, refused."""
    signed = parties.status.get(rid) == "ACTIVE" and bool(parties.answers.get((rid, "sign.notify")))
    return signed or (parties.refused.get(rid) == "CRM_TIMEOUT" and rid not in parties.status)


async def _count(parties: SteadyParties, store: str, report: FaultReport) -> None:
    report.started = len(parties.flows)
    report.finished = sum(_finished(parties, rid) for rid in parties.flows)
    report.lost = [rid for rid in parties.flows if not _finished(parties, rid)]
    report.doubled = [f"{rid} {t}" for rid, t in parties.doubled_answers() if t not in _REPEATABLE]
    twice = await store_rows(store, "SELECT phone FROM agreements GROUP BY phone HAVING count(*) > 1")
    report.doubled += [f"phone {row[0]} has two or more agreements" for row in twice]
    report.duplicate_deliveries = parties.duplicate_deliveries()
    report.refused = sum(len(m) for (_, t), m in parties.answers.items() if t == "message.rejected")
    report.publish_retries = parties.publish_retries
    report.repeats_sent = parties.repeats_sent
    report.timed_out = sum(r == "CRM_TIMEOUT" for r in parties.refused.values())
    queries = {
        "agreements": "SELECT count(*) FROM agreements",
        "ACTIVE": "SELECT count(*) FROM agreements WHERE status='ACTIVE'",
        "numbers with 2+ ACTIVE": "SELECT count(*) FROM (SELECT phone FROM agreements WHERE status='ACTIVE' "
        "GROUP BY phone HAVING count(*) > 1) AS t",
        "dead messages": "SELECT count(*) FROM dead_messages",
        "open cases": "SELECT count(*) FROM cases",
        "unsent outbox": "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
    }
    for name, sql in queries.items():
        report.store[name] = int((await store_rows(store, sql))[0][0])  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kills", type=int, default=100, help="SIGKILLs and restarts of the hub (default 100)"
    )
    parser.add_argument(
        "--broker-restarts", type=int, default=0, help="rabbitmqctl stop_app/start_app cycles"
    )
    parser.add_argument(
        "--connection-cuts", type=int, default=0, help="rabbitmqctl close_all_connections, after the restarts"
    )
    parser.add_argument("--rate", type=float, default=6.0, help="flows started per second")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--crm-timeout", type=float, default=600.0, help="SIGNHUB_CRM_TIMEOUT_S of the hub")
    parser.add_argument("--out", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    plan = FaultPlan(kills=args.kills, broker_restarts=args.broker_restarts,
                     connection_cuts=args.connection_cuts, rate=args.rate, store=args.store,
                     seed=args.seed, crm_timeout_s=args.crm_timeout)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="signhub-faults-"))
    report = asyncio.run(run_faults(plan, workdir))
    text = "\n".join([f"$ python -m bench.faults {' '.join(argv or sys.argv[1:])}", *report.lines()]) + "\n"
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    ok = not report.lost and not report.doubled and report.store.get("numbers with 2+ ACTIVE", 1) == 0
    ok = ok and all(o.first_answer_s is not None and o.ready_again_s is not None for o in report.outages)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"hub logs kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
