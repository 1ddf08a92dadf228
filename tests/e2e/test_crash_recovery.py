"""The hub killed with SIGKILL at the dangerous moments and restarted: each flow completes once,
and republished messages keep their message_id."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topology import Names
from hub.messaging.topology import HubNames, delete_topology
from hub.parties import Registry
from hub.settings import Settings
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.hubprocess import HubProcess
from tests.support.hubrun import AMQP_URL, hub_settings, party_queues
from tests.support.probe import Probe, to


@dataclass
class Rig:
    settings: Settings
    hub: HubProcess
    probe: Probe
    db: Path

    def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(sql, params))

    async def rows_become(self, expected: list[tuple[object, ...]], sql: str, within_s: float = 5.0) -> None:
        """Polls the store (nothing announces a write) until `sql` gives `expected`, at most `within_s`."""
        deadline = time.monotonic() + within_s
        while (found := self.rows(sql)) != expected:
            assert time.monotonic() < deadline, f"{sql} gave {found}, not {expected}, within {within_s} s"
            await asyncio.sleep(0.05)

    async def quiet(self) -> None:
        """Everything the hub had to say so far has been said: a refusal sent last came back."""
        mid = await self.probe.publish("bank.ICBC", "sign.request", {"marker": True})
        await self.probe.expect("the marker's refusal", to("bank.ICBC", "message.rejected", message_id=mid))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    settings = hub_settings(tmp_path, crm_timeout_s=1.5, crm_asks=2)
    hub = HubProcess(settings, tmp_path / "hub.log")
    await hub.start()
    probe = await Probe.connect(AMQP_URL, settings.prefix, party_queues(settings))
    try:
        yield Rig(settings, hub, probe, Path(settings.store))
    finally:
        await probe.close()
        await hub.stop()
        registry = Registry.of(settings.banks, settings.provinces)
        await delete_topology(AMQP_URL, HubNames(Names(settings.prefix)), registry.parties(),
                              len(settings.retry_delays_s))  # fmt: skip


async def _approved(probe: Probe) -> dict[str, str]:
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("approval", to("bank.ICBC", "sign.response", request_id=request["request_id"]))
    return request


async def _restart_with_crash(rig: Rig, crash_at: str) -> None:
    await rig.hub.stop()
    await rig.hub.start(crash_at=crash_at)


async def test_killed_after_the_commit_and_before_the_publish_the_flow_completes_once(rig: Rig) -> None:
    request = await _approved(rig.probe)
    await _restart_with_crash(rig, "after_commit:sign.confirmed")
    await rig.probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    assert await rig.hub.died() == -9
    await rig.hub.start()
    result = await rig.probe.expect(
        "sign.result", to("bank.ICBC", "sign.result", request_id=request["request_id"])
    )
    await rig.quiet()
    assert result.body["status"] == "ACTIVE"
    results = rig.probe.all(to("bank.ICBC", "sign.result", request_id=request["request_id"]))
    assert [r.message_id for r in results] == [result.message_id]
    assert len(rig.probe.all(to("crm.GD", "sign.notify", phone=request["phone"]))) == 1
    stored = rig.rows("SELECT message_id FROM outbox WHERE type='sign.result' AND correlation_id IS NOT NULL")
    assert (result.message_id,) in stored
    assert rig.rows("SELECT count(*) FROM agreements WHERE phone=?", request["phone"]) == [(1,)]


async def test_killed_after_the_publish_and_before_marking_sent_repeats_keep_their_message_id(
    rig: Rig,
) -> None:
    request = await _approved(rig.probe)
    await _restart_with_crash(rig, "after_publish:sign.result")
    await rig.probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    assert await rig.hub.died() == -9
    await rig.hub.start()
    match = to("bank.ICBC", "sign.result", request_id=request["request_id"])
    results = await rig.probe.expect_count("sign.result twice", match, 2)
    await rig.quiet()
    assert len({r.message_id for r in results}) == 1
    notifies = rig.probe.all(to("crm.GD", "sign.notify", phone=request["phone"]))
    assert notifies and len({r.message_id for r in notifies}) == 1
    assert rig.rows("SELECT count(*) FROM agreements WHERE phone=?", request["phone"]) == [(1,)]
    # Marked sent once republished: the mark is written with the next unit of work, or alone
    # within MARK_WITHIN_S when none comes (rows published after them, like the marker's answer,
    # may still be between publish and mark).
    unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND type IN ('sign.result', 'sign.notify')"
    await rig.rows_become([(0,)], unsent)


async def test_killed_with_a_crm_timer_pending_the_timer_fires_after_the_restart(rig: Rig) -> None:
    request = sign_request(fresh_phone())
    await rig.probe.publish("bank.ICBC", "sign.request", request)
    first = await rig.probe.expect("first ask", to("crm.GD", "verify.request", phone=request["phone"]))
    await rig.hub.kill()
    await rig.hub.start()
    timeout = await rig.probe.expect("CRM_TIMEOUT", to("bank.ICBC", "sign.response", request_id=request["request_id"]),
                                     timeout=10)  # fmt: skip
    assert timeout.body["reason_code"] == "CRM_TIMEOUT"
    asks = rig.probe.all(to("crm.GD", "verify.request", phone=request["phone"]))
    assert {a.body["verify_id"] for a in asks} == {first.body["verify_id"]}
    assert len({a.message_id for a in asks}) == 2
    await rig.quiet()
    assert len(rig.probe.all(to("bank.ICBC", "sign.response", request_id=request["request_id"]))) == 1
