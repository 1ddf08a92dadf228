"""`signhub demo`: the hub and the simulators together on a private prefix, driving real
bank-channel signings through RabbitMQ, then a summary of what happened.

The demo uses a small registry (4 banks, 4 provinces) so that it declares and deletes only a few
quorum queues, a temporary store, short CRM timeouts, and checks every outcome against what the
scenario expected: a demo that says "all as expected" has proven it on the real broker.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from hub.bootstrap import Hub, build_hub
from hub.broker_connection import url_with_tls_files
from hub.demo_recon import reconcile_in_demo
from hub.messaging.topology import delete_topology
from hub.segments import SegmentTable
from hub.settings import Settings
from simulators.bank_records import BankKnobs
from simulators.crm_register import CrmKnobs
from simulators.fleet import Simulators
from simulators.lifecycle_scenarios import ChangeRun, change_agreements
from simulators.operator_walk import WebRun, walk_operator_channel
from simulators.runner import start_simulators
from simulators.scenarios import Plan, Run, drive, plan
from simulators.seed import World, build_world
from simulators.web_sites import WebSites, addresses, free_port, serve_web_sites

DEMO_BANKS = ["ICBC", "CCB", "ABC", "CMB"]
DEMO_PROVINCES = ["GD", "BJ", "SH", "ZJ"]
OUTSIDE_PROVINCE = "XJ"  # a real province the demo registry does not serve: UNKNOWN_SEGMENT


def demo_settings(settings: Settings, workdir: Path) -> Settings:
    return settings.model_copy(update={
        "prefix": f"{settings.prefix}-demo-{uuid.uuid4().hex[:6]}", "store": str(workdir / "hub.db"),
        "files": workdir / "files", "banks": DEMO_BANKS, "provinces": DEMO_PROVINCES,
        "crm_timeout_s": 1.0, "crm_asks": 2, **_web_settings(),
    })  # fmt: skip


def _web_settings() -> dict[str, Any]:
    """Flow 1's sites on free local ports, with a web hall key and bank notice keys made for this run."""
    hub, hall, bank, crm = (free_port() for _ in range(4))
    return {"http_host": "127.0.0.1", "http_port": hub, "public_url": None,
            "web_hall_keys": {"web": SecretStr(secrets.token_urlsafe(24))},
            "bank_notice_keys": {code: SecretStr(secrets.token_urlsafe(24)) for code in DEMO_BANKS},
            "web_hall_urls": {"web": f"http://127.0.0.1:{hall}"},
            "bank_pages": {"*": f"http://127.0.0.1:{bank}/bank/{{bank}}/sign"},
            "sim_crm_api_url": f"http://127.0.0.1:{crm}"}  # fmt: skip


def _outside_phone(table: SegmentTable) -> str:
    for prefix in table.prefixes_of(OUTSIDE_PROVINCE):
        phone = (prefix + "0000000")[:11]
        if table.province_of(phone) == OUTSIDE_PROVINCE:
            return phone
    raise RuntimeError(f"the segment table has no number of {OUTSIDE_PROVINCE}")


class DemoWatch(Protocol):
    """A look inside a demo run (the personal-data test): once the hub started, and at the end."""

    async def started(self, hub: Hub) -> None: ...
    async def finished(self, hub: Hub, sims: Simulators) -> None: ...


async def run_demo(
    settings: Settings, *, flows: int, seed: int, serve: bool = False, watch: DemoWatch | None = None
) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="signhub-demo-"))
    s = demo_settings(settings, workdir)
    table = SegmentTable.load(s.segments, s.segment_overrides)
    world = build_world(seed, DEMO_BANKS, DEMO_PROVINCES, flows // len(DEMO_PROVINCES) + 10, segments=table)
    p = plan(world, DEMO_PROVINCES, flows, _outside_phone(table))
    hub = await build_hub(s)
    await hub.start()
    try:
        if watch is not None:
            await watch.started(hub)
        sims = await _simulators(s, world, p, workdir)
        sites = await serve_web_sites(sims, addresses(s, tuple(DEMO_BANKS)), table)
        try:
            runs = await drive(sims, p, DEMO_BANKS)
            web = await _operator_channel(sites, world, p)
            changes = await change_agreements(sims, runs, seed, randoms=3)
            await _send_garbage(sims)
            await _settled(hub, sims, runs)
            code = await _summary(hub, sims, runs, changes, s, workdir, time.monotonic() - started)
            code = await reconcile_in_demo(hub, sims, Path(s.files), seed) or code
            code = _web_summary(web, sites, serve) or code
            if watch is not None:
                await watch.finished(hub, sims)
            if serve:
                await _serve_until_interrupted(sites)
            return code
        finally:
            await sites.stop()
            await sims.close()
    finally:
        await hub.stop()
        await delete_topology(url_with_tls_files(s), hub.hub_names, hub.registry.parties(),
                              len(s.retry_delays_s))  # fmt: skip


async def _operator_channel(sites: WebSites, world: World, p: Plan) -> WebRun:
    """One flow-1 signing over HTTP: web hall, the hub's entry, the bank's page, the result."""
    used = {s.phone for s in (*p.happy, p.silent, p.fails, p.duplicate)}
    phone = next(s.phone for prov in DEMO_PROVINCES for s in world.signable(prov) if s.phone not in used)
    assert sites.hall is not None
    bank = DEMO_BANKS[1]  # CCB: its notice reaches the web hall through the hub
    return await walk_operator_channel(
        sites.hall.config.base_url, phone, bank, world.usable_accounts(bank)[-1]
    )


def _web_summary(web: WebRun, sites: WebSites, serve: bool) -> int:
    assert sites.hall is not None
    ok = web.state == web.expected
    print(f"operator channel (web hall -> hub -> {web.bank} signing page, over HTTP): {web.state}"
          + ("" if ok else f" UNEXPECTED, expected {web.expected}"), flush=True)  # fmt: skip
    print(f"walk through the operator channel in a browser: {sites.hall.config.base_url}/"
          + ("" if serve else " (run `signhub demo --serve` to keep it up)"), flush=True)  # fmt: skip
    return 0 if ok else 1


async def _serve_until_interrupted(sites: WebSites) -> None:
    a = sites.addresses
    hall = sites.hall.config.base_url if sites.hall else "(none)"
    print(f"serving until Ctrl-C: web hall {hall}/ ; hub {a.hub} ; bank pages {a.bank_site}/bank/<BANK>/sign ;"
          f" CRM API {a.crm_api}", flush=True)  # fmt: skip
    await asyncio.Event().wait()


async def _simulators(s: Settings, world: object, p: Plan, workdir: Path) -> Simulators:
    hold = frozenset({p.duplicate.phone})
    bank_knobs = {b: BankKnobs(hold=hold) for b in DEMO_BANKS[:2]}
    bank_knobs[DEMO_BANKS[-1]] = BankKnobs(fail_after_approval=frozenset({p.fails.phone}))
    crm_knobs = {p.silent.province: CrmKnobs(silent=frozenset({p.silent.phone}))}
    return await start_simulators(
        url_with_tls_files(s), s.prefix, world, DEMO_BANKS, DEMO_PROVINCES,  # type: ignore[arg-type]
        workdir / "sms", bank_knobs=bank_knobs, crm_knobs=crm_knobs, files=Path(s.files),
    )  # fmt: skip


async def _send_garbage(sims: Simulators) -> None:
    """A bank sends a message that is not JSON: it must be refused, not lost, the hub still up."""
    bank = sims.banks[DEMO_BANKS[0]]
    await bank.client.publish_raw(f"bank.{bank.code}.sign.request", b"{not json",
                                  message_id=f"garbage-{uuid.uuid4().hex[:8]}", type="sign.request",
                                  content_type="application/json")  # fmt: skip


async def _settled(hub: Hub, sims: Simulators, runs: list[Run]) -> None:
    """Waits (bounded) until every ACTIVE agreement is synced at its CRM and BOSS and the outbox is empty."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = await hub.store.counts()
        unsynced = await hub.store.reports().active_not_yet_synced()
        if counts["outbox_unsent"] == 0 and unsynced == 0 and counts["dead_messages"] >= 1:
            return
        await asyncio.sleep(0.2)  # polling the store: no event tells "every party has answered"
    raise TimeoutError("the CRMs and BOSS did not finish syncing within 30 s")


async def _queue_depth(hub: Hub, queue: str) -> int:
    channel = await hub.connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def _summary(
    hub: Hub,
    sims: Simulators,
    runs: list[Run],
    changes: list[ChangeRun],
    s: Settings,
    workdir: Path,
    took: float,
) -> int:
    outcomes = [(r, r.actual(sims.banks[r.bank].outcomes[r.request_id])) for r in runs]
    wrong = [(r, got) for r, got in outcomes if got != r.expected]
    wrong += [(Run(c.label, "-", "-", c.expected), c.actual) for c in changes if c.actual != c.expected]
    counts = await hub.store.counts()
    dead = await hub.store.reports().dead_by_reason()
    dead_text = ", ".join(f"{reason}: {n}" for reason, n in dead.items())
    synced = await hub.store.reports().active_synced()
    sms = sum(len(c.sms.lines) for c in sims.crms.values())
    lines = [
        f"signhub demo: prefix {s.prefix}, {len(DEMO_BANKS)} banks x {len(DEMO_PROVINCES)} provinces, store {s.store}",
        f"flows started: {len(runs)} bank-channel signings ({sum(1 for _, g in outcomes if g != 'REFUSED_BY_BANK')} "
        "reached the hub)",
        "outcomes by status and reason:",
        *(f"  {status:<38} {n}" for status, n in sorted(Counter(g for _, g in outcomes).items())),
        f"agreements ACTIVE: {counts['agreements_active']} (synced at CRM and BOSS: {synced}); "
        f"SMS sent: {sms} (logs in {workdir / 'sms'})",
        f"manual queue: {counts['cases_open']} open case(s); {await _queue_depth(hub, hub.deps.names.manual_queue)} "
        f"message(s) in {hub.deps.names.manual_queue}",
        f"dead letters: {counts['dead_messages']} ({dead_text}); "
        f"{await _queue_depth(hub, hub.deps.names.dead_queue)} message(s) in {hub.deps.names.dead_queue}",
        f"simulator contract errors: {sum(len(v) for v in sims.errors().values())}",
        f"time taken: {took:.1f} s",
    ]
    lines += ["agreement changes:"] + [f"  {c.label:<46} {c.actual}" for c in changes]
    lines += ["scenarios:"] + [
        f"  {r.label:<36} {r.bank:<5} {got}" for r, got in outcomes if r.label != "happy path"
    ]
    lines += [
        f"UNEXPECTED: {r.label} ({r.bank} {r.request_id}): expected {r.expected}, got {got}"
        for r, got in wrong
    ]
    lines.append(
        "all outcomes as expected"
        if not wrong and not sims.errors()
        else "SOME OUTCOMES WERE NOT AS EXPECTED"
    )
    print("\n".join(lines), flush=True)
    return 0 if not wrong and not sims.errors() else 1
