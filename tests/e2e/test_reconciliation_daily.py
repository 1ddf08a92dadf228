"""DAILY files: a record changed in the last 10 minutes of the business day (Asia/Shanghai) that
shows on one side only is held and looked at again with the next day's file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from contracts.common import Scope
from hub.bootstrap import Hub
from tests.support.data import fresh_phone
from tests.support.hubrun import running_hub
from tests.support.probe import Probe
from tests.support.recon import answered, bank_line, signed, today

# Yesterday and today in Shanghai: the hub's own changes in these tests happen today.
NEXT = today()
DAY = NEXT - timedelta(days=1)
LATE = f"{DAY.isoformat()}T23:55:00+08:00"  # within the hold window before midnight
EARLY = f"{DAY.isoformat()}T09:00:00+08:00"


@pytest.fixture
async def hub_and_probe(tmp_path: Path) -> AsyncIterator[tuple[Hub, Probe]]:
    async with running_hub(tmp_path) as pair:
        yield pair


def _late(number: str, phone: str, changed_at: str = LATE) -> tuple[str, ...]:
    return bank_line(
        {"bank_agreement_no": number, "phone": phone, "signed_at": changed_at, "changed_at": changed_at}
    )


async def _count(hub: Hub, number: str) -> int:
    rows = await hub.store.query("SELECT count(*) AS n FROM agreements WHERE bank_agreement_no=?", (number,))
    return int(rows[0]["n"])


async def test_a_late_record_missing_at_the_hub_is_held_then_corrected_the_next_day(
    hub: Hub, probe: Probe
) -> None:
    first = await answered(
        hub, probe, "bank.ICBC", [_late("LATE1", fresh_phone())], scope=Scope.DAILY, day=DAY
    )
    assert first.body["counts"]["MISSING_AT_HUB"] == 0 and await _count(hub, "LATE1") == 0
    held = await hub.store.query("SELECT record_key, side FROM recon_held WHERE party='bank.ICBC'")
    assert held == [{"record_key": "LATE1", "side": "file"}]

    second = await answered(hub, probe, "bank.ICBC", [], scope=Scope.DAILY, day=NEXT)
    assert second.body["counts"]["MISSING_AT_HUB"] == 1 and await _count(hub, "LATE1") == 1
    assert await hub.store.query("SELECT * FROM recon_held") == []


async def test_a_held_record_that_reached_the_hub_after_midnight_matches(hub: Hub, probe: Probe) -> None:
    phone = fresh_phone()
    first = await answered(hub, probe, "bank.ICBC", [_late("LATE2", phone)], scope=Scope.DAILY, day=DAY)
    assert sum(first.body["counts"].values()) == 0
    await signed(probe, "ICBC", phone, bank_agreement_no="LATE2")  # the confirmation arrives after midnight

    second = await answered(hub, probe, "bank.ICBC", [], scope=Scope.DAILY, day=NEXT)
    assert sum(second.body["counts"].values()) == 0 and await _count(hub, "LATE2") == 1


async def test_a_record_early_in_the_day_is_not_held(hub: Hub, probe: Probe) -> None:
    answer = await answered(hub, probe, "bank.ICBC", [_late("EARLY1", fresh_phone(), EARLY)], scope=Scope.DAILY,
                            day=DAY)  # fmt: skip
    assert answer.body["counts"]["MISSING_AT_HUB"] == 1 and await _count(hub, "EARLY1") == 1
