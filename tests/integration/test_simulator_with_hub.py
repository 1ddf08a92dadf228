"""The simulators against the real hub on the real broker: flow 2 from bank to BOSS and back.

The hub runs in-process with its own prefix, SQLite file and a two-bank, two-province registry;
the simulators talk to it only through the broker, as outside parties.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from contracts.common import ReasonCode
from hub.bootstrap import build_hub
from hub.messaging.topology import delete_topology
from hub.segments import SegmentTable
from simulators.bank import BankKnobs
from simulators.crm import CrmKnobs
from simulators.fleet import Simulators
from simulators.runner import start_simulators
from simulators.seed import World, build_world
from tests.support.hubrun import AMQP_URL, hub_settings

pytestmark = pytest.mark.broker

WAIT_S = 15.0


@asynccontextmanager
async def _hub_with_simulators(workdir: Path, **knobs: Any) -> AsyncIterator[Simulators]:
    settings = hub_settings(workdir)
    hub = await build_hub(settings)
    await hub.start()
    try:
        table = SegmentTable.load(settings.segments, settings.segment_overrides)
        world = build_world(21, settings.banks, settings.provinces, 8, segments=table)
        sims = await start_simulators(
            AMQP_URL, settings.prefix, world, settings.banks, settings.provinces, workdir / "sms", **knobs
        )
        try:
            yield sims
        finally:
            await sims.close()
    finally:
        await hub.stop()
        await delete_topology(AMQP_URL, hub.hub_names, hub.registry.parties(), len(settings.retry_delays_s))


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[Simulators]:
    async with _hub_with_simulators(tmp_path) as running:
        yield running


def _signable(world: World, province: str, index: int = 0) -> str:
    return world.signable(province)[index].phone


async def test_a_bank_signing_reaches_the_crm_the_boss_and_the_subscriber(sims: Simulators) -> None:
    bank, crm, boss = sims.banks["ICBC"], sims.crms["GD"], sims.bosses["GD"]
    phone = _signable(sims.world, "GD")

    request_id = await bank.start_signing(phone, sims.world.usable_accounts("ICBC")[0])

    result = await bank.wait_result(request_id, WAIT_S)
    assert result["status"] == "ACTIVE", result
    agreement = await crm.wait_agreement(phone, WAIT_S)
    assert agreement.agreement_id == result["agreement_id"]
    await boss.wait_until(lambda: agreement.agreement_id in boss.active(), "agreement.sync ADD", WAIT_S)
    await crm.wait_until(lambda: agreement.agreement_id in crm.boss_results, "boss.synced", WAIT_S)
    assert crm.boss_results[agreement.agreement_id] == ["OK"]
    assert any(phone in line and "QXYD" in line for line in crm.sms.lines)
    assert sims.errors() == {}


async def test_each_refused_number_is_answered_with_the_crms_reason(sims: Simulators) -> None:
    bank = sims.banks["CCB"]
    account = sims.world.usable_accounts("CCB")[0]
    for subscriber in sims.world.subscribers["BJ"][:5]:
        request_id = await bank.start_signing(subscriber.phone, account)
        response = await bank.wait_response(request_id, WAIT_S)
        assert response["result"] == "REJECTED"
        assert response["reason_code"] == subscriber.expected_refusal, subscriber
    assert sims.errors() == {}


async def test_two_banks_confirming_one_number_put_the_second_in_manual_review(tmp_path: Path) -> None:
    hold = BankKnobs(hold=True)
    async with _hub_with_simulators(tmp_path, bank_knobs={"ICBC": hold, "CCB": hold}) as sims:
        first, second = sims.banks["ICBC"], sims.banks["CCB"]
        phone = _signable(sims.world, "GD", 1)
        first_id = await first.start_signing(phone, sims.world.usable_accounts("ICBC")[0])
        second_id = await second.start_signing(phone, sims.world.usable_accounts("CCB")[0])
        assert (await first.wait_response(first_id, WAIT_S))["result"] == "APPROVED"
        assert (await second.wait_response(second_id, WAIT_S))["result"] == "APPROVED"

        await first.confirm_for(first_id)
        assert (await first.wait_result(first_id, WAIT_S))["status"] == "ACTIVE"
        await second.confirm_for(second_id)
        assert (await second.wait_result(second_id, WAIT_S))["status"] == "MANUAL_REVIEW"


async def test_a_silent_crm_makes_the_hub_refuse_with_crm_timeout(tmp_path: Path) -> None:
    async with _hub_with_simulators(tmp_path, crm_knobs={"GD": CrmKnobs(silent=True)}) as sims:
        bank = sims.banks["ICBC"]
        request_id = await bank.start_signing(
            _signable(sims.world, "GD"), sims.world.usable_accounts("ICBC")[0]
        )
        response = await bank.wait_response(request_id, WAIT_S)
    assert response["reason_code"] == ReasonCode.CRM_TIMEOUT
    assert len(sims.crms["GD"].recorder.of_type("verify.request")) >= 2
