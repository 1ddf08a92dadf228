"""The hub carries on by itself after its broker restarts or cuts its connections (issue 21), and
says so while it cannot: `/readyz` fails during the outage and recovers after, and a hub whose
broker stays away exits non-zero for its supervisor to restart it.

On a RabbitMQ node of the tests' own (bench.broker_node): the machine's broker is never restarted.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.broker_node import BrokerNode, broker_node
from bench.faults import FaultPlan, run_faults_on
from hub.bootstrap import Hub
from hub.liveness import EXIT_CODE
from hub.outgoing import Target
from hub.store.unit_of_work import OutboxRow
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.hubprocess import HubProcess
from tests.support.hubrun import hub_settings, running_hub
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[BrokerNode]:
    async with broker_node() as started:
        yield started


async def _publish(probe: Probe, party: str, msg_type: str, body: dict[str, Any], within_s: float = 30.0) -> None:
    """As a party does after an outage: what the broker did not confirm is sent again, under the
    same message_id, until it is (bounded)."""
    mid, deadline = f"M{time.monotonic_ns()}", time.monotonic() + within_s
    while True:
        try:
            await asyncio.wait_for(probe.publish(party, msg_type, body, message_id=mid), 5.0)
            return
        except Exception as exc:
            assert time.monotonic() < deadline, f"the broker did not confirm {msg_type} within {within_s} s: {exc!r}"
            await asyncio.sleep(0.2)


async def _signs(probe: Probe) -> None:
    """A whole bank-channel signing: verify.request, approval, sign.result ACTIVE, sign.notify."""
    request = sign_request(fresh_phone())
    await _publish(probe, "bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    await _publish(probe, "crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("approval", to("bank.ICBC", "sign.response", request_id=request["request_id"]))
    await _publish(probe, "bank.ICBC", "sign.confirmed", confirmed(request))
    result = await probe.expect("sign.result", to("bank.ICBC", "sign.result", request_id=request["request_id"]))
    assert result.body["status"] == "ACTIVE"
    await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=request["phone"]))


async def _readyz_becomes(hub: Hub, status: int, within_s: float) -> dict[str, Any]:
    """Polls /readyz (nothing announces readiness) until it answers `status`; returns its body."""
    url, deadline = f"http://127.0.0.1:{hub.settings.http_port}/readyz", time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            answer = await client.get(url)
            if answer.status_code == status:
                body: dict[str, Any] = answer.json()
                return body
            assert time.monotonic() < deadline, f"/readyz did not answer {status} within {within_s} s: {answer.text}"
            await asyncio.sleep(0.1)


async def test_a_signing_after_the_broker_application_restarts_completes_and_readyz_fails_meanwhile(
    tmp_path: Path, node: BrokerNode
) -> None:
    async with running_hub(tmp_path, amqp_url=node.url, watch_every_s=0.2) as (hub, probe):
        await _signs(probe)
        await node.stop_app()
        try:
            down = await _readyz_becomes(hub, 503, within_s=10)
        finally:
            await node.start_app()
        assert down["status"] == "not ready"
        assert down["parts"]["inbound consumer"] != "ok" and down["parts"]["outbox relay"] != "ok"
        await _signs(probe)
        up = await _readyz_becomes(hub, 200, within_s=30)
        assert set(up["parts"].values()) == {"ok"}


async def test_a_signing_after_the_broker_closes_every_connection_completes(
    tmp_path: Path, node: BrokerNode
) -> None:
    async with running_hub(tmp_path, amqp_url=node.url, watch_every_s=0.2) as (hub, probe):
        await _signs(probe)
        await node.close_all_connections()
        await _signs(probe)
        up = await _readyz_becomes(hub, 200, within_s=30)
        assert set(up["parts"].values()) == {"ok"}


async def test_a_consumer_lost_while_connected_is_noticed_and_consumes_again(
    tmp_path: Path, node: BrokerNode
) -> None:
    # Whatever took the consumer away (here: its channel closed under it), the watch finds it by
    # doing, and the consumer consumes again on a new channel.
    async with running_hub(tmp_path, amqp_url=node.url, watch_every_s=0.2) as (hub, probe):
        assert hub.committer is not None
        await hub.committer.close()
        down = await _readyz_becomes(hub, 503, within_s=10)
        assert down["parts"]["inbound consumer"] == "its channel is closed"
        await _readyz_becomes(hub, 200, within_s=10)
        await _signs(probe)


async def test_a_relay_channel_closed_while_connected_is_reopened_and_the_outbox_drains(
    tmp_path: Path, node: BrokerNode
) -> None:
    async with running_hub(tmp_path, amqp_url=node.url, watch_every_s=0.2) as (hub, probe):
        await hub.relay.channel.close()
        request = sign_request(fresh_phone())
        await _publish(probe, "bank.ICBC", "sign.request", request)  # its verify.request waits in the outbox
        down = await _readyz_becomes(hub, 503, within_s=10)
        assert down["parts"]["outbox relay"] == "its channel is closed"
        await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
        await _readyz_becomes(hub, 200, within_s=10)


async def test_a_publish_the_broker_does_not_confirm_in_time_fails_readyz_and_goes_again(
    tmp_path: Path, node: BrokerNode
) -> None:
    # A memory alarm makes the broker stop reading from publishing connections: no confirm comes.
    # Unbounded, such a publish held its round, and the round its rows, for ever.
    async with running_hub(tmp_path, amqp_url=node.url, watch_every_s=0.2, publish_timeout_s=1.0) as (hub, probe):
        await node.ctl("set_vm_memory_high_watermark", "0")
        try:
            row = OutboxRow(message_id=f"M{uuid.uuid4().hex}", target=Target.PARTY.value,
                            routing_key="bank.ICBC.sign.result", type="sign.result", correlation_id=None,
                            body=b'{"probe": true}', headers={})  # fmt: skip
            async with hub.store.unit_of_work() as uow:
                await uow.add_outbox([row], hub.deps.clock())
            hub.relay.wake()
            down = await _readyz_becomes(hub, 503, within_s=15)
            # The blocked broker answers no round trip either, so the check may say "no answer".
            assert down["parts"]["outbox relay"] != "ok", down
            assert "TimeoutError" in (hub.relay.failing or ""), hub.relay.failing
        finally:
            await node.ctl("set_vm_memory_high_watermark", "0.4")
        got = await probe.expect("the row published again", lambda r: r.message_id == row.message_id)
        assert got.body == {"probe": True}
        await _readyz_becomes(hub, 200, within_s=15)


async def test_under_load_every_flow_is_answered_once_across_broker_restarts_and_cuts(
    tmp_path: Path, node: BrokerNode
) -> None:
    plan = FaultPlan(kills=0, broker_restarts=2, connection_cuts=1, rate=30.0, drain_s=120.0)
    report = await run_faults_on(plan, tmp_path, node)
    assert report.started > 100, report.lines()
    assert not report.lost and not report.doubled, report.lines()
    assert report.store["numbers with 2+ ACTIVE"] == 0 and report.store["unsent outbox"] == 0, report.lines()
    assert all(o.first_answer_s is not None and o.ready_again_s is not None for o in report.outages), report.lines()
    # A restart keeps the broker away for seconds: /readyz must have said so. A cut heals within
    # about a second, which /readyz, polled every 0.2 s, may not catch.
    assert all(o.readyz_failed for o in report.outages if o.what.startswith("restart")), report.lines()


async def test_a_hub_whose_broker_stays_away_exits_non_zero_after_the_configured_time(
    tmp_path: Path, node: BrokerNode
) -> None:
    settings = hub_settings(tmp_path, amqp_url=node.url, watch_every_s=0.2, unready_exit_s=3.0)
    hub = HubProcess(settings, tmp_path / "hub.log")
    await hub.start()
    try:
        await node.stop_app()
        try:
            code = await hub.died(timeout=60)
        finally:
            await node.start_app()
        assert code == EXIT_CODE
        lines = [json.loads(line) for line in (tmp_path / "hub.log").read_text().splitlines() if line.startswith("{")]
        said = [e["msg"] for e in lines if e["logger"] == "signhub.liveness"]
        # Once per change of state: one "does not work" per part, however many checks failed.
        assert said.count(next(m for m in said if m.startswith("inbound consumer does not work"))) == 1, said
        assert any("giving up" in m for m in said), said
    finally:
        await hub.stop()
