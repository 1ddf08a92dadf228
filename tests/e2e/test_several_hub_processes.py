"""Two hub processes consume the same queues against one PostgreSQL store: 2,000 concurrent
bank-channel flows, 10% of the numbers confirmed by two banks. Every flow is answered once,
every number has exactly one ACTIVE agreement, every extra confirmation is a manual case."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import asyncpg

from contracts.topology import Names
from hub.messaging.topology import HubNames, delete_topology
from hub.parties import Registry
from tests.support.autoparty import AutoParties
from tests.support.data import fresh_phone
from tests.support.hubprocess import HubProcess
from tests.support.hubrun import AMQP_URL, free_port, hub_settings
from tests.support.pg import fresh_database

FLOWS, DOUBLES = 2000, 200  # 200 numbers asked for by two banks: 1,800 numbers, 2,000 flows


async def test_two_hub_processes_on_postgres_keep_one_active_agreement_per_number(tmp_path: Path) -> None:
    async with fresh_database() as url:
        settings = hub_settings(tmp_path, store=url, crm_timeout_s=120.0, prefetch=100)
        hubs = [HubProcess(settings, tmp_path / "hub-a.log"),
                HubProcess(settings.model_copy(update={"http_port": free_port()}), tmp_path / "hub-b.log")]  # fmt: skip
        parties: AutoParties | None = None
        try:
            for hub in hubs:
                await hub.start(timeout=60)
            parties = await AutoParties.start(AMQP_URL, settings.prefix, settings.banks, settings.provinces)
            phones = [fresh_phone() for _ in range(FLOWS - DOUBLES)]
            for i, phone in enumerate(phones):
                await parties.sign("ICBC" if i % 2 else "CCB", phone)
                if i < DOUBLES:
                    await parties.sign("CCB" if i % 2 else "ICBC", phone)
            await parties.wait_all_results(timeout=300)
            assert all(hub.proc is not None and hub.proc.returncode is None for hub in hubs)
            results = parties.results
            assert len(parties.requests) == FLOWS
            assert all(len({mid for mid, _ in results[r]}) == 1 for r in parties.requests), (
                "a flow answered twice"
            )
            statuses = Counter(body["status"] for r in parties.requests for _, body in results[r][:1])
            assert statuses == {"ACTIVE": FLOWS - DOUBLES, "MANUAL_REVIEW": DOUBLES}
            db = await asyncpg.connect(url)
            try:
                per_phone = await db.fetch("SELECT phone, count(*) AS n FROM agreements WHERE status='ACTIVE' "
                                           "GROUP BY phone")  # fmt: skip
                cases = await db.fetchval("SELECT count(*) FROM cases WHERE state='OPEN'")
            finally:
                await db.close()
            assert len(per_phone) == FLOWS - DOUBLES and all(r["n"] == 1 for r in per_phone)
            assert cases == DOUBLES
        finally:
            if parties is not None:
                await parties.close()
            for hub in hubs:
                await hub.stop()
            registry = Registry.of(settings.banks, settings.provinces)
            await delete_topology(AMQP_URL, HubNames(Names(settings.prefix)), registry.parties(),
                                  len(settings.retry_delays_s))  # fmt: skip
