"""The two sides of a benchmark run: flows through the hub process, and the same flows through the
bare relay (the raw-broker bound). Each side measures, prints, and cleans up after itself."""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import BinaryIO

import aio_pika

from bench import proc, profiling, relay, wire
from bench.drive import Driver, DriveResult, missing_by_step
from bench.hubproc import HubProcess, export_code
from bench.looplag import LoopLag
from bench.parties import Parties, Timeline
from bench.provenance import measured_line
from bench.stats import latency_line, p99_by_tenth, steady_rate, summary_ms

Report = Callable[[str], None]
_MACHINE = "machine (all processes)"
# Inside the machine's busy time, so it is reported apart: a run with much of it measured a
# machine that ran slower than its own counters say.
_STOLEN = "stolen by the hypervisor (steal)"
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
HOPS = (("hub hop sign.request -> verify.request", "req_pub", "vreq_rcv"),
        ("hub hop verify.response -> sign.response", "vresp_pub", "sresp_rcv"),
        ("hub hop sign.confirmed -> sign.result", "conf_pub", "result_rcv"),
        ("(sign.confirmed -> sign.notify at the CRM)", "conf_pub", "notify_rcv"))  # fmt: skip


@dataclass
class Side:
    label: str
    flows_per_s: float
    steady_per_s: float
    ok: int


async def describe(args: argparse.Namespace, report: Report) -> None:
    conn = await aio_pika.connect(args.url)
    try:
        server = conn.transport.connection.server_properties
        broker = f"{server.get('product')} {server.get('version')}"
    finally:
        await conn.close()
    report(measured_line(args.hub_commit))
    report("== machine ==")
    for key, value in proc.machine().items():
        report(f"  {key}: {value}")
    report(f"  broker: {broker}; aio-pika {version('aio-pika')}, aiormq {version('aiormq')}, "
           f"faststream {version('faststream')}, SQLite {sqlite3.sqlite_version}")  # fmt: skip
    report(f"  code: {_git_state()}")
    report("== settings ==")
    report(f"  command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    for key, value in sorted(vars(args).items()):
        report(f"  --{key.replace('_', '-')}: {value}")
    per_flow = len(wire.FLOW_MESSAGES) + (0 if args.no_synced else 1)
    report(f"  broker messages per flow: {per_flow} ({', '.join(wire.FLOW_MESSAGES)}"
           f"{'' if args.no_synced else ', ' + wire.SYNCED}), each persistent, publisher-confirmed, "
           f"manually acknowledged, on quorum queues")  # fmt: skip


def _git_state() -> str:
    """The commit, and the hub's files that differ from it (others edit the same working tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--short", "--", "hub", "contracts"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc!r})"
    changed = ", ".join(line[3:] for line in dirty[:12]) + (" ..." if len(dirty) > 12 else "")
    return f"commit {head}" + (
        f"; hub/contracts files changed or new in the working tree: {changed}" if dirty else ""
    )


def _parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key.startswith("SIGNHUB_") or not _:
            raise SystemExit(f"--hub-env wants SIGNHUB_KEY=VALUE, not {item!r}")
        env[key] = value
    return env


async def run_hub_side(args: argparse.Namespace, report: Report, run_id: str) -> Side:
    workdir = Path(tempfile.mkdtemp(prefix="signhub-bench-"))
    try:
        return await _run_hub_side(args, report, run_id, workdir)
    finally:  # the hub's store and code, also when the run failed
        shutil.rmtree(workdir, ignore_errors=True)


async def _run_hub_side(args: argparse.Namespace, report: Report, run_id: str, workdir: Path) -> Side:
    code, source = REPO, "the working tree as it is (others may be editing it)"
    if args.hub_commit:
        code = workdir / "code"
        source = f"commit {export_code(args.hub_commit, code)} (git archive of hub/ and contracts/)"
    hub = HubProcess(args.url, f"bench{run_id}", workdir, _parse_env(args.hub_env), code)
    profiler: asyncio.subprocess.Process | None = None
    folded = OUT / f"{args.profile_name}.folded"
    try:
        await hub.start()
        report("")
        report(f"== hub (pid {hub.pid}, python -m hub.cli run) ==")
        report(f"  hub code: {source}")
        report("  " + ", ".join(f"{k}={v}" for k, v in hub.settings_shown().items()))
        report("  not set, so the hub's defaults: SIGNHUB_PREFETCH=64 unless given above; the store opens "
               "SQLite in WAL mode with synchronous=FULL")  # fmt: skip
        if args.profile:
            profiler = await profiling.start(hub.pid, folded, args.profile_rate)
            await asyncio.sleep(1.0)  # py-spy attaches
        t0 = time.perf_counter()
        watch = {"hub": [hub.pid], "broker": proc.broker_pids()}
        side = await _drive_side("hub", args, report, hub.prefix, run_id, watch, rss_pid=hub.pid)
        if profiler is not None:
            said = await profiling.stop(profiler)
            _write_profile(args, report, folded, time.perf_counter() - t0, said)
            profiler = None
    finally:
        if profiler is not None:
            await profiling.stop(profiler)
        code = await hub.stop()
        try:
            await hub.delete_topology()
        except Exception as exc:
            report(f"  !! could not delete the hub's topology {hub.prefix}.*: {exc!r}")
    report(f"  hub stopped (exit code {code}); its queues and exchanges deleted")
    _report_inside(report, hub)
    problems = hub.log_problems()
    report(
        f"  hub log: {len(problems)} warning/error lines"
        + (f"; first: {problems[0][:300]}" if problems else "")
    )
    return side


def _report_inside(report: Report, hub: HubProcess) -> None:
    try:
        inside = hub.time_inside()
    except Exception as exc:
        report(f"  (could not read the hub's outbox: {exc!r})")
        return
    report("  inside the hub, from the store (processing of the cause starts -> broker confirmed the answer;")
    report("  excludes the wait in the hub's inbound queue):")
    for msg_type in ("verify.request", "sign.response", "sign.result", "sign.notify"):
        report(latency_line(f"-> {msg_type}", summary_ms(inside.get(msg_type, []))))


def _write_profile(args: argparse.Namespace, report: Report, folded: Path, seconds: float, said: str) -> None:
    if not folded.exists():
        report(f"  !! py-spy wrote no profile: {said[-500:]}")
        return
    text = profiling.summary(folded.read_text(), seconds, args.profile_rate)
    target = OUT / f"{args.profile_name}.txt"
    target.write_text(f"{measured_line(args.hub_commit)}\nhub profile during: {' '.join(sys.argv[1:])}\n"
                      f"{_git_state()}\n\n{text}\n")  # fmt: skip
    report(f"  profile: {_shown(target)} (collapsed stacks in {_shown(folded)})")


def _shown(path: Path) -> Path:
    """Relative to the repository where it is inside (--profile-name may point elsewhere)."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


async def run_raw_side(args: argparse.Namespace, report: Report, run_id: str) -> Side:
    prefix = f"bench{run_id}raw"
    log = Path(tempfile.mkstemp(prefix="signhub-bench-relay-", suffix=".log")[1])
    await relay.declare(args.url, prefix)
    relay_proc: asyncio.subprocess.Process | None = None
    try:
        with _append(log) as err:
            relay_proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.relay", prefix, "--url", args.url, "--prefetch",
                str(args.relay_prefetch), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        assert relay_proc.stdout is not None
        said = await asyncio.wait_for(relay_proc.stdout.readline(), 30.0)
        if b"relay ready" not in said:
            raise RuntimeError(f"the relay did not start: {said!r}, exit {relay_proc.returncode}")
        report("")
        report(f"== raw-broker bound: bare relay (pid {relay_proc.pid}, python -m bench.relay, prefetch "
               f"{args.relay_prefetch}) in place of the hub, same parties, same queues ==")  # fmt: skip
        report(f"  relay: {said.decode(errors='replace').strip()}")
        watch = {"relay": [relay_proc.pid], "broker": proc.broker_pids()}
        side = await _drive_side("raw", args, report, prefix, run_id, watch, rss_pid=None)
    finally:
        if relay_proc is not None and relay_proc.returncode is None:
            relay_proc.terminate()
            try:
                await asyncio.wait_for(relay_proc.wait(), 10)
            except TimeoutError:
                relay_proc.kill()
                await asyncio.wait_for(relay_proc.wait(), 10)
        try:
            await relay.delete(args.url, prefix)
        except Exception as exc:
            report(f"  !! could not delete the raw topology {prefix}.*: {exc!r}")
    errors = _read_and_remove(log)
    report(f"  relay stopped; its queues and exchanges deleted; relay errors: {len(errors)}"
           + (f"; first: {errors[0][:300]}" if errors else ""))  # fmt: skip
    return side


def _append(path: Path) -> BinaryIO:
    return path.open("ab")


def _read_and_remove(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    log.unlink(missing_ok=True)
    return lines


def _cpu_or_nan(pid: int) -> float:
    try:
        return proc.cpu_seconds(pid)
    except OSError:  # the process ended: its figure is unknown, not zero
        return math.nan


def _cpu(watch: dict[str, list[int]]) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {name: sum(_cpu_or_nan(pid) for pid in pids) for name, pids in watch.items()}
    out["bench parties"] = usage.ru_utime + usage.ru_stime
    out[_MACHINE] = proc.machine_cpu()[0]
    out[_STOLEN] = proc.machine_steal()
    return out


async def _drive_side(label: str, args: argparse.Namespace, report: Report, prefix: str, run_id: str,
                      watch: dict[str, list[int]], rss_pid: int | None) -> Side:  # fmt: skip
    n = args.flows
    window = args.window or (n if args.rate else 256)
    timeline = Timeline(n)
    rss: list[tuple[int, int]] = []
    began = time.perf_counter()

    def progress(done: int) -> None:
        line = f"  [{label}] {done} flows finished after {time.perf_counter() - began:.1f} s"
        if rss_pid is not None:
            kb, peak = proc.status_kb(rss_pid, "VmRSS"), proc.status_kb(rss_pid, "VmHWM")
            rss.append((done, kb))
            line += f"; hub RSS {kb / 1024:.1f} MiB (peak so far {peak / 1024:.1f} MiB)"
        report(line)

    mode = f"at {args.rate:g} flows/s" if args.rate else "at full speed"
    report(f"  {n} flows {mode}, at most {window} in flight")
    driver = Driver(
        n,
        rate=args.rate,
        window=window,
        on_progress=progress,
        progress_every=args.rss_every or max(1, n // 10),
    )
    parties = await Parties.connect(args.url, prefix, run_id, timeline, driver.on_done, synced=not args.no_synced,
                                    publishers=args.publishers, prefetch=args.party_prefetch)  # fmt: skip
    lag = LoopLag()
    try:
        rss0 = proc.status_kb(rss_pid, "VmRSS") if rss_pid else 0
        # No collection pauses in the load generator while it measures (its garbage is small and
        # bounded by the run); what it holds from before is left out of every collection.
        gc.collect()
        gc.freeze()
        gc.disable()
        lag.start()
        cpu0, wall0, all0 = _cpu(watch), time.perf_counter(), proc.all_cpu()
        wal0 = proc.broker_wal_files()
        result = await driver.run(parties.start_flow, args.timeout or 60 + n / 25, args.stall)
        await lag.stop()
        gc.enable()
        drain_s = await _drain(args.url, f"{prefix}.hub.inbound", 60.0)
        cpu1, wall1, all1 = _cpu(watch), time.perf_counter(), proc.all_cpu()
        wal1 = proc.broker_wal_files()
        memory = (
            (rss0, proc.status_kb(rss_pid, "VmRSS"), proc.status_kb(rss_pid, "VmHWM")) if rss_pid else None
        )
    finally:
        await lag.stop()
        gc.enable()
        gc.unfreeze()
        await parties.close()
    _report_side(report, args, result, timeline, parties, drain_s, cpu0, cpu1, wall1 - wall0, memory, rss)
    report(lag.line())
    report(_wal_line(wal0, wal1))
    skip = {os.getpid(), *(pid for pids in watch.values() for pid in pids)}
    others = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in proc.top_others(all0, all1, skip))
    report(f"    busiest other processes (their own counters, which need not add up with the machine's): "
           f"{others or 'none'}")  # fmt: skip
    return Side(label, result.ok / result.elapsed, steady_rate(list(timeline.at["done"])), result.ok)


def _wal_line(before: frozenset[str] | None, after: frozenset[str] | None) -> str:
    said = "  broker's quorum-queue WAL (proc.broker_wal_files)"
    if before is None or after is None:
        return f"{said}: not readable here, so whether it rolled over during the drive is unknown"
    if before == after:
        return f"{said}: the same file throughout the drive (no rollover)"
    return (f"{said}: ROLLED OVER during the drive ({', '.join(sorted(Path(f).name for f in before))} -> "
            f"{', '.join(sorted(Path(f).name for f in after))}): the broker wrote its entries out to segment "
            "files meanwhile, seconds of extra broker work that show in the tail")  # fmt: skip


async def _drain(url: str, queue: str, timeout_s: float) -> float:
    """Seconds until the queue in front of the hub (or relay) was empty twice in a row (bounded)."""
    t0 = time.perf_counter()
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        empty = 0
        while empty < 2 and time.perf_counter() - t0 < timeout_s:
            declared = await channel.declare_queue(queue, passive=True)
            empty = empty + 1 if declared.declaration_result.message_count == 0 else 0
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.perf_counter() - t0


def _report_side(report: Report, args: argparse.Namespace, result: DriveResult, timeline: Timeline,
                 parties: Parties, drain_s: float, cpu0: dict[str, float], cpu1: dict[str, float],
                 wall: float, memory: tuple[int, int, int] | None, rss: list[tuple[int, int]]) -> None:  # fmt: skip
    at = timeline.at
    missing = result.started - result.ok - result.failed
    report(f"  finished: {result.ok} ACTIVE, {result.failed} failed, {missing} started but not finished, "
           f"{result.n - result.started} never started")  # fmt: skip
    if result.stopped_early:
        report(f"  !! stopped early: {result.stopped_early}; not finished, by what they wait for: "
               f"{missing_by_step(timeline, result.started)}")  # fmt: skip
    rate = result.ok / result.elapsed
    report(f"  throughput: {rate:.1f} flows/s ({result.ok} flows in {result.elapsed:.1f} s, first sign.request "
           f"sent -> last flow finished); steady 10%-90%: {steady_rate(list(at['done'])):.1f} flows/s")  # fmt: skip
    if args.rate:
        report(f"  starts: {result.late_starts} waited for the window; latest start {result.max_start_lag_s * 1000:.0f} ms"
               " behind schedule")  # fmt: skip
    report("  latency measured at the parties (message sent -> answer received; includes both broker legs):")
    report(latency_line("whole flow (sign.request -> result and notify)",
                        summary_ms(d - s for s, d in zip(at["req_pub"], at["done"], strict=True))))  # fmt: skip
    for name, start, end in HOPS:
        report(latency_line(name, summary_ms(e - s for s, e in zip(at[start], at[end], strict=True))))
    hops = [(at[start][i], at[end][i]) for i in range(result.n) for _, start, end in HOPS[:3]]
    report("  the three hub hops' p99 in each tenth of the flows (start order), ms: "
           + " ".join(f"{v:.1f}" for v in p99_by_tenth(hops)))  # fmt: skip
    report(
        f"  CPU per flow (over {wall:.1f} s: the drive and {drain_s:.1f} s of drain until the inbound queue was empty):"
    )
    used = {name: cpu1[name] - cpu0[name] for name in cpu1 if name != _STOLEN}
    used["other (kernel threads, other processes)"] = 2 * used[_MACHINE] - sum(used.values())
    for name, seconds in used.items():
        report(f"    {name:<40} {seconds / max(result.ok, 1) * 1000:7.2f} ms/flow {seconds:7.1f} s = "
               f"{100 * seconds / wall:5.1f}% of one core")  # fmt: skip
    stolen = cpu1[_STOLEN] - cpu0[_STOLEN]
    report(f"    {_STOLEN:<40} {stolen:7.1f} s = {100 * stolen / wall:5.1f}% of one core (already in the machine's)")
    if memory is not None:
        rss0, rss1, peak = memory
        report(
            f"  hub RSS: {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after; peak (VmHWM) {peak / 1024:.1f} MiB"
        )
    if parties.unexpected or parties.errors or parties.failed or parties.repeats or result.start_errors:
        report(
            f"  !! unexpected messages: {dict(parties.unexpected.most_common(5))}; repeats: {dict(parties.repeats)}"
        )
        report(f"  !! party errors: {len(parties.errors)} {parties.errors[:3]}; failed flows: {len(parties.failed)} "
               f"{parties.failed[:3]}; start errors: {result.start_errors[:3]}")  # fmt: skip
