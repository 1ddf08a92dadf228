"""Flow 3 with the simulated parties: banks and provinces upload files from their own data with
discrepancies injected; the hub corrects itself from the banks, sends each province its
error-handling file, the CRM applies it, syncs BOSS, tells the subscribers, and ends balanced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.bootstrap import Hub, build_hub
from hub.messaging.topology import delete_topology
from hub.segments import SegmentTable
from simulators.fleet import Simulators
from simulators.recon_round import reconcile_round
from simulators.runner import start_simulators
from simulators.seed import build_world
from tests.support.hubrun import AMQP_URL, hub_settings

WAIT_S = 20.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Hub, Simulators]]:
    settings = hub_settings(tmp_path)
    hub = await build_hub(settings)
    await hub.start()
    try:
        table = SegmentTable.load(settings.segments, settings.segment_overrides)
        world = build_world(5, settings.banks, settings.provinces, 12, segments=table)
        sims = await start_simulators(AMQP_URL, settings.prefix, world, settings.banks, settings.provinces,
                                      tmp_path / "sms", files=Path(settings.files))  # fmt: skip
        try:
            yield hub, sims
        finally:
            await sims.close()
    finally:
        await hub.stop()
        await delete_topology(AMQP_URL, hub.hub_names, hub.registry.parties(), len(settings.retry_delays_s))


async def _state(hub: Hub, party: str, want: str = "BALANCED") -> str:
    """The state of the party's latest file, once it is `want` (or whatever it is after WAIT_S)."""
    state = ""
    for _ in range(int(WAIT_S / 0.1)):
        rows = await hub.store.query(
            "SELECT state FROM recon_files WHERE party=? ORDER BY received_at DESC", (party,)
        )
        state = rows[0]["state"] if rows else ""
        if state == want:
            break
        await asyncio.sleep(0.1)
    return state


async def _sign_everyone(sims: Simulators) -> int:
    bank, signed = sims.banks["ICBC"], 0
    accounts = sims.world.usable_accounts("ICBC")
    for province in sims.crms:
        for i, subscriber in enumerate(sims.world.signable(province)[:6]):
            request_id = await bank.start_signing(subscriber.phone, accounts[i % len(accounts)])
            result = await bank.wait_result(request_id, WAIT_S)
            signed += result["status"] == "ACTIVE"
    for province, crm in sims.crms.items():
        await crm.wait_until(lambda c=crm: sum(not a.provisional for a in c.agreements.values()) >= 6,
                             f"crm.{province} has its agreements", WAIT_S)  # fmt: skip
    return signed


async def test_banks_and_provinces_reconcile_and_every_province_ends_balanced(
    running: tuple[Hub, Simulators],
) -> None:
    hub, sims = running
    assert await _sign_everyone(sims) == 12
    outcome = await reconcile_round(sims, Path(hub.settings.files), drift_each=1, timeout=WAIT_S)

    assert outcome.results["ICBC"]["status"] == "RECONCILED"
    assert outcome.results["ICBC"]["counts"] == {"MISSING_AT_HUB": 1, "MISSING_AT_BANK": 1, "STATUS_MISMATCH": 1,
                                                 "TERMS_MISMATCH": 1}  # fmt: skip
    assert outcome.results["CCB"]["counts"] == dict.fromkeys(outcome.results["ICBC"]["counts"], 0)
    for province, crm in sims.crms.items():
        applied, failed = outcome.applied[province]
        assert await _state(hub, f"crm.{province}") == "BALANCED"
        rows = await hub.store.query(
            "SELECT errors_count, counts FROM recon_files WHERE party=?", (f"crm.{province}",)
        )
        assert failed == 0 and applied == rows[0]["errors_count"] >= 3, (province, applied, rows)
        deleted = outcome.injected[f"crm.{province}"]["UNKNOWN_AT_HUB"][0]
        assert not crm.agreements[deleted].active
        assert any("经与银行核对" in line for line in crm.sms.lines), (
            "the subscribers heard of the corrections"
        )
    # A second round finds nothing: the hub, the banks and the provinces agree.
    again = await reconcile_round(sims, Path(hub.settings.files), timeout=WAIT_S)
    assert all(sum(r["counts"].values()) == 0 for r in again.results.values()), again.results
    assert all(applied == (0, 0) for applied in again.applied.values()), again.applied
