"""Transient store failures are retried with growing delays, then refused as RETRIES_EXHAUSTED."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.bootstrap import Hub
from hub.services.operations import replay_dead
from hub.store.sqlite import SqliteStore
from tests.support.data import fresh_phone, sign_request
from tests.support.flaky import FlakyStore
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, to


@pytest.fixture(scope="module")
async def flaky_hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe, FlakyStore]]:
    workdir = Path(tmp_path_factory.mktemp("flaky"))
    store = FlakyStore(await SqliteStore.open(workdir / "hub.db"))
    async with running_hub(workdir, store=store, retry_delays_s=[0.2, 0.4, 0.8]) as (hub, probe):
        yield hub, probe, store


async def test_a_store_that_recovers_in_time_processes_the_message_once(
    flaky_hub: tuple[Hub, Probe, FlakyStore],
) -> None:
    _, probe, store = flaky_hub
    request = sign_request(fresh_phone())
    store.failures["busy-twice"] = 2
    await probe.publish("bank.ICBC", "sign.request", request, message_id="busy-twice")
    ask = await probe.expect(
        "verify.request after two retries", to("crm.GD", "verify.request", phone=request["phone"])
    )
    assert ask.body["bank_code"] == "ICBC"
    assert store.attempts["busy-twice"] == 3


async def test_a_store_that_stays_busy_ends_in_the_dead_queue_as_retries_exhausted(
    flaky_hub: tuple[Hub, Probe, FlakyStore],
) -> None:
    hub, probe, store = flaky_hub
    request = sign_request(fresh_phone())
    store.failures["always-busy"] = -1
    await probe.publish("bank.ICBC", "sign.request", request, message_id="always-busy")
    dead = await probe.expect(
        "dead copy", lambda r: r.queue.endswith(".dead") and r.message_id == "always-busy"
    )
    assert dead.headers["x-signhub-reason"] == "RETRIES_EXHAUSTED"
    assert "StoreBusy" in dead.headers["x-signhub-error"]
    told = await probe.expect(
        "message.rejected", to("bank.ICBC", "message.rejected", message_id="always-busy")
    )
    assert told.body["reason_code"] == "OTHER" and told.body["errors"][0] == "RETRIES_EXHAUSTED"
    assert store.attempts["always-busy"] == 4  # the first try and three retries
    assert not probe.all(to("crm.GD", "verify.request", phone=request["phone"]))
    # Refused is not processed: once the store is well, the same message takes effect.
    store.failures["always-busy"] = 0
    await probe.publish("bank.ICBC", "sign.request", request, message_id="always-busy")
    await probe.expect(
        "verify.request after the resend", to("crm.GD", "verify.request", phone=request["phone"])
    )
    rows = await hub.store.query("SELECT reason FROM dead_messages WHERE message_id='always-busy'")
    assert rows == [{"reason": "RETRIES_EXHAUSTED"}]


async def test_a_replayed_dead_message_takes_effect_once_however_often_it_is_pressed(
    flaky_hub: tuple[Hub, Probe, FlakyStore],
) -> None:
    hub, probe, store = flaky_hub
    request = sign_request(fresh_phone())
    store.failures["replay-me"] = -1
    await probe.publish("bank.ICBC", "sign.request", request, message_id="replay-me")
    await probe.expect("dead copy", lambda r: r.queue.endswith(".dead") and r.message_id == "replay-me")
    store.failures["replay-me"] = 0
    dead = await hub.store.query("SELECT dead_id FROM dead_messages WHERE message_id='replay-me'")
    for _ in range(2):
        assert await replay_dead(hub.store, hub.deps, dead[0]["dead_id"], by="op") == "bank.ICBC.sign.request"
    await probe.expect(
        "verify.request from the replay", to("crm.GD", "verify.request", phone=request["phone"])
    )
    marker = await probe.publish("bank.ICBC", "sign.request", {"bad": True})
    await probe.expect("the marker's refusal", to("bank.ICBC", "message.rejected", message_id=marker))
    assert len(probe.all(to("crm.GD", "verify.request", phone=request["phone"]))) == 1
    state = await hub.store.query("SELECT state FROM dead_messages WHERE message_id='replay-me'")
    assert state == [{"state": "REPLAYED"}]
