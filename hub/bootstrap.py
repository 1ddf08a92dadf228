"""The one composition root: reads settings, builds broker, store, clock and id source, wires the
hub together and runs it. Everything else receives what it needs as parameters; tests pass their
own store, clock or id source here instead of patching.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from aio_pika.abc import AbstractRobustConnection
from cryptography.fernet import Fernet
from faststream.rabbit import RabbitBroker

from contracts.topology import Names
from hub.broker_connection import connect_broker, rabbit_broker
from hub.console.mount import mount_console
from hub.consumers.inbound import GroupCommitter, register_consumers
from hub.faults import arm as arm_faults
from hub.flows.common import NewId, Timing
from hub.flows.modifying import Bounds
from hub.http import build_app
from hub.liveness import EXIT_CODE, Part, Watch
from hub.messaging.outbox_relay import OutboxRelay
from hub.messaging.retry import RetryScheduler
from hub.messaging.seal import load_seal
from hub.messaging.topology import HubNames, declare_topology
from hub.parties import Registry
from hub.protection import DataProtector, load_or_create_key
from hub.segments import SegmentTable
from hub.services.context import Deps
from hub.services.housekeeping import Housekeeper
from hub.services.intake import Intake
from hub.services.operator_signing import SessionSweeper
from hub.services.reconciliation import Reconciler
from hub.services.signing_entry import SigningEntry, WebConfig, WebHall, post_json
from hub.services.timers import CrmTimers
from hub.settings import Settings, SettingsError
from hub.store.sqlite import SqliteStore
from hub.store.unit_of_work import Store
from hub.watched import broker_part, poison_consumer_part, store_part, tasks_part
from hub.web_entry import signing_router

log = logging.getLogger("signhub.hub")


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Hub:
    """A running hub: its parts, so that tests and the demo can look inside."""

    settings: Settings
    store: Store
    deps: Deps
    intake: Intake
    relay: OutboxRelay
    timers: CrmTimers
    broker: RabbitBroker
    connection: AbstractRobustConnection
    hub_names: HubNames
    http: uvicorn.Server | None = None
    entry: SigningEntry | None = None
    sweeper: SessionSweeper | None = None
    reconciler: Reconciler | None = None
    housekeeper: Housekeeper | None = None
    committer: GroupCommitter | None = None
    watch: Watch | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    gave_up: asyncio.Event = field(default_factory=asyncio.Event)  # the watch found it broken too long

    @property
    def registry(self) -> Registry:
        return self.deps.registry

    async def start(self) -> None:
        if self.committer is not None:
            self.tasks.append(asyncio.create_task(self.committer.run(), name="group-commit"))
            await self.committer.consume(self.connection, self.hub_names.inbound_queue, self.settings.prefetch)
        await self.broker.start()
        self.tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        self.tasks.append(asyncio.create_task(self.timers.run(), name="crm-timers"))
        if self.sweeper is not None:
            self.tasks.append(asyncio.create_task(self.sweeper.run(), name="session-sweeper"))
        if self.reconciler is not None:
            self.tasks.append(asyncio.create_task(self.reconciler.run(), name="reconciler"))
        if self.housekeeper is not None:
            self.tasks.append(asyncio.create_task(self.housekeeper.run(), name="housekeeping"))
        if self.http is not None:
            self.tasks.append(asyncio.create_task(self.http.serve(), name="http"))
        if self.watch is not None:
            self.tasks.append(asyncio.create_task(self._watch(self.watch), name="watch"))
        log.info("hub %s started: %d parties", self.deps.names.prefix, len(self.registry.parties()))

    async def _watch(self, watch: Watch) -> None:
        await watch.run()
        self.gave_up.set()

    async def stop(self) -> None:
        # Background work first (a group being committed rolls back; its deliveries, never
        # acknowledged, come again), then the consumers, the HTTP side and the connections.
        for task in self.tasks:
            if task.get_name() != "http":
                task.cancel()
        for task in self.tasks:
            if task.get_name() != "http":
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.entry is not None:
            await self.entry.notices.close()  # notices still being passed on to web halls
        if self.committer is not None:
            await self.committer.close()
        await self.broker.stop()
        if self.http is not None:
            self.http.should_exit = True
            for task in self.tasks:
                if task.get_name() == "http":
                    await task
        await self.connection.close()
        await self.store.close()

    def watched_parts(self) -> list[Part]:
        parts = [store_part(self.store), broker_part(self.connection, self.hub_names.inbound_queue)]
        if self.committer is not None:
            parts.append(Part("inbound consumer", self.committer.check, self.committer.reconsume))
        parts.append(poison_consumer_part(self.connection, self.hub_names.poison_queue,
                                          lambda: self.broker.ping(timeout=2.0)))  # fmt: skip
        parts += [Part("outbox relay", self.relay.check, self.relay.repair), tasks_part(self.tasks)]
        return parts

    async def health(self) -> dict[str, Any]:
        broker_ok = not self.connection.is_closed
        counts = await self.store.counts()
        return {"status": "ok" if broker_ok else "degraded", "broker": broker_ok, "store": counts}


def _key_file(settings: Settings) -> Path:
    """Where a data key generated for want of SIGNHUB_DATA_KEY is kept: beside the SQLite store,
    never at a path relative to wherever the process happens to start."""
    if settings.store_is_postgres:
        # Several processes share the store: a key file of each would encrypt under different keys.
        raise SettingsError("SIGNHUB_DATA_KEY: required with a PostgreSQL store (every hub process "
                            "sharing it needs the same key); none is generated")  # fmt: skip
    return Path(settings.store).resolve().with_suffix(".key")


async def build_protector(settings: Settings, store: Store) -> DataProtector:
    """The data keys from settings (or a generated key file), and the hub's fingerprint secret,
    kept encrypted in the store so fingerprints survive a rotation of the data keys."""
    configured = settings.data_key.get_secret_value() if settings.data_key else None
    if configured is None and settings.store == ":memory:":
        configured = Fernet.generate_key().decode()  # the store lasts as long as the process: so does its key
    key_file = _key_file(settings) if configured is None else Path(os.devnull)  # not read with a key given
    try:
        keys, created = load_or_create_key(configured, key_file)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if created:
        log.warning("SIGNHUB_DATA_KEY is not set: generated a data key in %s", key_file)
    bootstrap = DataProtector(keys)
    token = await store.put_meta_if_absent("fingerprint_key", bootstrap.encrypt(os.urandom(32)))
    return DataProtector(keys, fingerprint_key=bootstrap.decrypt(token))


def web_config(settings: Settings) -> WebConfig:
    """Flow 1's web settings: web halls with their keys and addresses, bank pages, the CCB rule."""
    halls = tuple(
        WebHall(name, key.get_secret_value().encode(), settings.web_hall_urls.get(name))
        for name, key in settings.web_hall_keys.items()
    )
    public = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    bank_keys = {bank: key.get_secret_value().encode() for bank, key in settings.bank_notice_keys.items()}
    for bank in sorted(set(settings.web_notice_via_hub) - set(bank_keys)):
        log.warning("bank %s notifies through the hub but has no key in SIGNHUB_BANK_NOTICE_KEYS: its notices "
                    "are refused", bank)  # fmt: skip
    return WebConfig(halls, dict(settings.bank_pages), frozenset(settings.web_notice_via_hub),
                     timedelta(seconds=settings.session_window_s), timedelta(seconds=settings.web_token_ttl_s),
                     public, bank_keys)  # fmt: skip


async def build_signing_entry(settings: Settings, store: Store, deps: Deps) -> SigningEntry:
    """The web entry, with the hub's token key (made once, kept encrypted in the store)."""
    token = await store.put_meta_if_absent("web_token_key", deps.protector.encrypt(os.urandom(32)))
    return SigningEntry(store, deps, web_config(settings), deps.protector.decrypt(token), post_json)


async def open_store(settings: Settings) -> Store:
    """SQLite for one hub process; PostgreSQL (a postgresql:// SIGNHUB_STORE) for several."""
    if settings.store_is_postgres:
        from hub.store.postgres import PostgresStore

        return await PostgresStore.open(settings.store)
    return await SqliteStore.open(settings.store)


async def build_deps(
    settings: Settings, store: Store, *, clock: Callable[[], datetime] = utc_now, ids: NewId = new_id
) -> Deps:
    """The services' tools from settings, alike for the hub, `signhub ops` and `signhub recon`: the
    same data key (or key file) and fingerprint key, timing and bounds."""
    timing = Timing(
        crm_timeout=timedelta(seconds=settings.crm_timeout_s),
        crm_asks=settings.crm_asks,
        approval_window=timedelta(seconds=settings.approval_window_s),
    )
    bounds = Bounds(settings.recharge_threshold_max_fen, settings.recharge_amount_min_fen,
                    settings.recharge_amount_max_fen)  # fmt: skip
    return Deps(Names(settings.prefix), Registry.of(settings.banks, settings.provinces),
                SegmentTable.load(settings.segments, settings.segment_overrides),
                await build_protector(settings, store), timing, ids, clock, bounds)  # fmt: skip


async def build_hub(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] = utc_now,
    ids: NewId = new_id,
    with_http: bool = True,
) -> Hub:
    """Builds a hub from settings; `store`, `clock` and `ids` may be replaced (tests do)."""
    store = store or await open_store(settings)
    deps = await build_deps(settings, store, clock=clock, ids=ids)
    names, registry = deps.names, deps.registry
    hub_names = HubNames(names)
    connection = await connect_broker(settings)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await declare_topology(channel, hub_names, registry.parties(), settings.retry_delays_s)
    faults = arm_faults(settings.fault_crash_at)
    relay = OutboxRelay(store, channel, names, clock, faults, publish_timeout_s=settings.publish_timeout_s)
    seal = await load_seal(store, deps.protector)  # what the hub says to itself on a retry or replay
    retry = RetryScheduler(channel, hub_names, settings.retry_delays_s, seal, settings.publish_timeout_s)
    intake = Intake(store, deps, retry, relay, faults, require_user_id=settings.require_user_id)
    timers = CrmTimers(store, deps, relay.wake, poll_s=min(0.5, settings.crm_timeout_s / 5))
    broker = rabbit_broker(settings)
    committer = register_consumers(broker, hub_names, intake, settings.prefetch, seal)
    hub = Hub(settings, store, deps, intake, relay, timers, broker, connection, hub_names, committer=committer)
    hub.entry = await build_signing_entry(settings, store, deps)
    hub.sweeper = SessionSweeper(store, deps, poll_s=min(5.0, settings.session_window_s / 10))
    if not settings.store_is_postgres and settings.store != ":memory:":
        # Reconciliation exports the hub's side from the SQLite file (PostgreSQL: not yet).
        hub.reconciler = Reconciler(store, deps, Path(settings.files), settings.store, relay.wake)
    hub.watch = Watch(hub.watched_parts(), every_s=settings.watch_every_s, exit_after_s=settings.unready_exit_s)
    hub.housekeeper = Housekeeper(store, deps.protector, clock, timedelta(days=settings.retention_days),
                                  timedelta(seconds=settings.housekeeping_every_s))  # fmt: skip
    if with_http:
        app = build_app(hub.health, settings.prefix, max_body=settings.http_max_body)
        app.include_router(signing_router(hub.entry))
        mount_console(app, settings, store, deps, hub_names, connection, hub.watch)
        config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning",
                                lifespan="off")  # fmt: skip
        hub.http = uvicorn.Server(config)
    return hub


async def run_hub(settings: Settings) -> int:
    """`signhub run`: the hub until SIGINT or SIGTERM (0), or until its watch gave up on it
    (`hub.liveness.EXIT_CODE`, for the supervisor to restart it)."""
    import signal

    hub = await build_hub(settings)
    await hub.start()
    # What start-up made (modules, models, the segment table) lives as long as the process: out of
    # the collector's sight, a full collection scans only newer objects (40 ms here before, <1 ms after).
    gc.collect()
    gc.freeze()
    # The store's thread needs the GIL to hand a commit back; while the event loop is busy it waits
    # the switch interval for it (5 ms by default), twice per hop. 0.5 ms keeps hops short.
    sys.setswitchinterval(0.0005)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.create_task(stop.wait())
    gave_up = asyncio.create_task(hub.gave_up.wait())
    await asyncio.wait({stopped, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (stopped, gave_up):
        waiter.cancel()
    await hub.stop()
    return EXIT_CODE if hub.gave_up.is_set() else 0
