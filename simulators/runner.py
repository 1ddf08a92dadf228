"""Starts every simulated counterpart of one hub: a bank per bank code, a CRM and a BOSS per province.

`start_simulators` is shared by `signhub simulate` (through `run_forever`) and the demo. Each
party has a connection of its own, as separate organisations would. `run_forever` serves until
cancelled, or until its watch (`hub.liveness`, a part per party, checked by doing) found the
parties not working for `unready_exit_s`: then it returns `EXIT_CODE`, for `signhub simulate` to
exit with so that its supervisor restarts it. A broker restart or a network cut it outlives by
itself (robust connections, publishes tried again, deliveries taken again: `simulators.party`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from contracts.routing import Party, PartyKind
from hub.liveness import EXIT_CODE, Part, Watch  # hub-free (see simulators.party_checks)
from simulators.bank import BankKnobs, BankSimulator
from simulators.boss import BossKnobs, BossSimulator
from simulators.crm import CrmSimulator
from simulators.crm_register import CrmKnobs
from simulators.fleet import Simulators
from simulators.party import PartyClient
from simulators.quiet_logs import quiet_reconnects
from simulators.recon_round import reconcile_every
from simulators.seed import SegmentLookup, World, build_world
from simulators.web_sites import WebSettings, addresses, serve_web_sites

log = logging.getLogger(__name__)

# How long `signhub simulate` waits for the hub to declare its exchanges and queues.
_HUB_START_WAIT_S = 120.0


async def start_simulators(
    url: str,
    prefix: str,
    world: World,
    banks: Sequence[str],
    provinces: Sequence[str],
    sms_dir: Path | None,
    *,
    bank_knobs: Mapping[str, BankKnobs] | None = None,
    crm_knobs: Mapping[str, CrmKnobs] | None = None,
    boss_knobs: Mapping[str, BossKnobs] | None = None,
    wait_s: float = 0.0,
    prefetch: int = 64,
    files: Path | None = None,
    reconnect_s: float = 5.0,
) -> Simulators:
    """Connect and start every party; `wait_s` bounds the wait for the hub's topology, and a lost
    connection is tried again every `reconnect_s`."""
    parties = [Party(PartyKind.BANK, b) for b in banks]
    parties += [Party(kind, p) for kind in (PartyKind.CRM, PartyKind.BOSS) for p in provinces]
    clients = await _connect_all(
        url, prefix, parties, prefetch=prefetch, wait_s=wait_s, reconnect_s=reconnect_s
    )
    sims = Simulators(world=world)
    for client in clients:
        code = client.party.code
        if client.party.kind is PartyKind.BANK:
            knobs = (bank_knobs or {}).get(code)
            sims.banks[code] = BankSimulator(client, world.accounts.get(code, []), knobs)
        elif client.party.kind is PartyKind.CRM:
            sms_log = sms_dir / f"sms-{code}.log" if sms_dir is not None else None
            subscribers = world.subscribers.get(code, [])
            sims.crms[code] = CrmSimulator(client, subscribers, (crm_knobs or {}).get(code), sms_log, files)
        else:
            sims.bosses[code] = BossSimulator(client, (boss_knobs or {}).get(code))
    try:
        starts = [s.start(wait_s=wait_s) for g in (sims.banks, sims.crms, sims.bosses) for s in g.values()]
        await asyncio.gather(*starts)
    except BaseException:
        await sims.close()
        raise
    log.info("simulators started: %d banks, %d provinces", len(sims.banks), len(sims.crms))
    return sims


async def _connect_all(
    url: str, prefix: str, parties: Sequence[Party], *, prefetch: int, wait_s: float, reconnect_s: float
) -> list[PartyClient]:
    connects = (
        PartyClient.connect(url, prefix, p, prefetch=prefetch, wait_s=wait_s, reconnect_s=reconnect_s)
        for p in parties
    )
    results = await asyncio.gather(*connects, return_exceptions=True)
    clients = [r for r in results if isinstance(r, PartyClient)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        raise failures[0]
    return clients


class RunSettings(WebSettings, Protocol):
    """What `run_forever` reads of the hub's settings (an outside party shares only these)."""

    @property
    def amqp_url(self) -> SecretStr: ...
    @property
    def prefix(self) -> str: ...
    @property
    def banks(self) -> list[str]: ...
    @property
    def provinces(self) -> list[str]: ...
    @property
    def files(self) -> Path: ...
    @property
    def segments(self) -> Path | None: ...
    @property
    def segment_overrides(self) -> Path | None: ...
    @property
    def broker_reconnect_s(self) -> float: ...
    @property
    def watch_every_s(self) -> float: ...
    @property
    def unready_exit_s(self) -> float: ...


def watch_parties(sims: Simulators, *, every_s: float, exit_after_s: float) -> Watch:
    """A watch over every party: a part each, checked by doing (`PartyClient.check`)."""
    parts = [Part(f"simulator {c.party}", c.check, c.repair) for c in sims.clients()]
    return Watch(parts, every_s=every_s, exit_after_s=exit_after_s)


async def run_forever(
    settings: RunSettings,
    *,
    seed: int,
    subscribers_per_province: int = 20,
    sign_every_s: float | None = None,
    recon_every_s: float | None = None,
) -> int:
    """`signhub simulate`: every counterpart, until cancelled, or until the parties did not work for
    `unready_exit_s` (returns `EXIT_CODE`); with `sign_every_s`, banks start signings; with
    `recon_every_s`, banks and provinces reconcile their DAILY files that often."""
    from hub.segments import SegmentTable  # with hub.liveness, the hub modules outside parties may use

    table = SegmentTable.load(settings.segments, settings.segment_overrides)
    with quiet_reconnects():
        sims = await _start(settings, table, seed, subscribers_per_province)
        try:
            return await _serve(sims, table, settings, seed=seed, sign_every_s=sign_every_s,
                                recon_every_s=recon_every_s)  # fmt: skip
        finally:
            await sims.close()


async def _start(
    settings: RunSettings, table: SegmentLookup, seed: int, subscribers_per_province: int
) -> Simulators:
    world = build_world(seed, settings.banks, settings.provinces, subscribers_per_province, segments=table)
    return await start_simulators(
        settings.amqp_url.get_secret_value(),
        settings.prefix,
        world,
        settings.banks,
        settings.provinces,
        settings.files / "sms",
        wait_s=_HUB_START_WAIT_S,
        files=settings.files,
        reconnect_s=settings.broker_reconnect_s,
    )


async def _serve(
    sims: Simulators,
    table: SegmentLookup,
    settings: RunSettings,
    *,
    seed: int,
    sign_every_s: float | None,
    recon_every_s: float | None,
) -> int:
    """Flow 1's web sites (the web hall, the banks' signing pages, the CRMs' eligibility API) and
    the background work, while the watch finds the parties working; then `EXIT_CODE`."""
    sites = await serve_web_sites(sims, addresses(settings, tuple(settings.banks)), table)
    log.info("web hall %s, bank pages %s", sites.hall.config.base_url if sites.hall else "(none)",
             sites.addresses.bank_site)  # fmt: skip
    watch = watch_parties(sims, every_s=settings.watch_every_s, exit_after_s=settings.unready_exit_s)
    background = _background(sims, settings.files, seed, sign_every_s, recon_every_s)
    try:
        await watch.run()  # returns only when the parties did not work for unready_exit_s
        return EXIT_CODE
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await sites.stop()


def _background(
    sims: Simulators, files: Path, seed: int, sign_every_s: float | None, recon_every_s: float | None
) -> list[asyncio.Task[None]]:
    tasks = []
    if sign_every_s:
        tasks.append(asyncio.create_task(_sign_now_and_then(sims, sign_every_s, random.Random(seed))))
    if recon_every_s:
        tasks.append(asyncio.create_task(reconcile_every(sims, files, recon_every_s)))
    return tasks


async def _sign_now_and_then(sims: Simulators, every_s: float, rng: random.Random) -> None:
    """Traffic for a live system: a random bank signs a random signable number every `every_s`."""
    phones = [s.phone for prov in sims.crms for s in sims.world.signable(prov)]
    while phones:
        bank = sims.banks[rng.choice(sorted(sims.banks))]
        accounts = sims.world.usable_accounts(bank.code)
        if accounts:
            phone = phones.pop(rng.randrange(len(phones)))
            try:
                await bank.start_signing(phone, rng.choice(accounts))
            except Exception:  # the broker away for longer than a publish is tried: on to the next
                log.exception("%s could not start a signing for %s", bank.code, phone)
        await asyncio.sleep(every_s)
