"""`signhub simulate` as users run it for days: it carries on by itself after a broker restart, and
exits non-zero when the broker stays away, saying so once per change of state (issue 21).

The process runs against a RabbitMQ node of the test's own (`bench.broker_node`): the machine's
broker is shared and must not be stopped. The test declares what the hub would
(`tests.support.restartable_hub`); it goes with the node, deleted after the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.broker_node import BrokerNode, broker_node
from contracts.routing import Party, PartyKind
from hub.liveness import EXIT_CODE
from simulators.web_sites import free_port
from tests.support.restartable_hub import RestartableHub, declare_hub

pytestmark = pytest.mark.broker

PARTIES = [Party(PartyKind.BANK, "ICBC"), Party(PartyKind.CRM, "GD"), Party(PartyKind.BOSS, "GD")]
UNREADY_EXIT_S = 10.0  # well above what a restart of the node costs the parties here (2 to 3 s)
STARTED_WITHIN_S = 30.0
ANSWER_WITHIN_S = 30.0


@pytest.fixture
async def node() -> AsyncIterator[BrokerNode]:
    async with broker_node() as started:
        yield started


def _env(node: BrokerNode, hub: RestartableHub, files: Path) -> dict[str, str]:
    return os.environ | {
        "SIGNHUB_AMQP_URL": node.url, "SIGNHUB_PREFIX": hub.names.prefix, "SIGNHUB_BANKS": "ICBC",
        "SIGNHUB_PROVINCES": "GD", "SIGNHUB_FILES": str(files), "SIGNHUB_LOG_LEVEL": "INFO",
        "SIGNHUB_WATCH_EVERY_S": "0.5", "SIGNHUB_UNREADY_EXIT_S": str(UNREADY_EXIT_S),
        "SIGNHUB_BROKER_RECONNECT_S": "0.5", "SIGNHUB_WEB_HALL_KEYS": "",
        "SIGNHUB_BANK_PAGES": f"*=http://127.0.0.1:{free_port()}/bank/{{bank}}/sign",
        "SIGNHUB_SIM_CRM_API_URL": f"http://127.0.0.1:{free_port()}",
    }  # fmt: skip


async def _consuming(hub: RestartableHub, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Until the broker counts a consumer on every party's queue (asked: no event), bounded."""
    deadline = asyncio.get_running_loop().time() + STARTED_WITHIN_S
    while not all([await hub.consumers_on(p) for p in PARTIES]):
        if proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"signhub simulate did not start consuming: {_tail(log)}")
        await asyncio.sleep(0.2)


def _states(log: Path, part: str) -> list[str]:
    """The watch's lines about `part`, in order: "down" or "up"."""
    lines = [json.loads(line)["msg"] for line in log.read_text().splitlines() if line.startswith("{")]
    return [
        "down" if msg.startswith(f"{part} does not work") else "up"
        for msg in lines
        if msg.startswith((f"{part} does not work", f"{part} works again"))
    ]


def _tail(log: Path) -> str:
    return "\n".join(log.read_text().splitlines()[-15:])


async def test_signhub_simulate_carries_on_after_a_broker_restart_and_exits_3_when_the_broker_stays_away(
    node: BrokerNode, tmp_path: Path
) -> None:
    hub = await declare_hub(node.url, PARTIES)
    log = tmp_path / "simulate.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli", "simulate", env=_env(node, hub, tmp_path), stdout=out, stderr=out
        )
    try:
        await _consuming(hub, proc, log)
        await node.stop_app()
        await node.start_app()
        message_id = await hub.send(PARTIES[1], "verify.request", {
            "verify_id": f"V{uuid.uuid4().hex[:12]}", "phone": "13800138000", "bank_code": "ICBC", "channel": "ONLINE",
        })  # fmt: skip
        await hub.answer_to(
            message_id, "crm.GD's verify.response after the broker restarted", ANSWER_WITHIN_S
        )
        assert proc.returncode is None, f"it exited after a short restart: {_tail(log)}"

        await node.stop_app()
        code = await asyncio.wait_for(proc.wait(), UNREADY_EXIT_S + 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await hub.connection.close()  # what it declared goes with the node, deleted after the test

    assert code == EXIT_CODE, _tail(log)
    for party in PARTIES:
        assert _states(log, f"simulator {party}") == ["down", "up", "down"], _tail(log)
    assert "giving up so that the supervisor restarts the process" in log.read_text()
