"""A `signhub run` with fault injection armed (issue 14, item 4): without the second switch it does
not start; with it, it warns at start and shows the armed point on /readyz and /metrics."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

from contracts.topology import Names
from hub.messaging.topology import HubNames, delete_topology
from hub.parties import Registry
from hub.settings import Settings
from tests.support.hubprocess import HubProcess, settings_env
from tests.support.hubrun import AMQP_URL, hub_settings

POINT = "after_commit:recon.file"  # a type these tests never send: the hub stays up


async def _delete_topology(settings: Settings) -> None:
    parties = Registry.of(settings.banks, settings.provinces).parties()
    await delete_topology(AMQP_URL, HubNames(Names(settings.prefix)), parties, len(settings.retry_delays_s))


async def _answered(http: httpx.AsyncClient, path: str, within_s: float = 15.0) -> httpx.Response:
    """The first answer to `path`: the HTTP side starts just after the hub says "started"."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await http.get(path)
        except httpx.ConnectError:
            assert time.monotonic() < deadline, f"the hub's HTTP port did not answer {path} within {within_s} s"
            await asyncio.sleep(0.1)  # nothing announces that the port is bound


async def test_a_hub_with_a_crash_point_but_without_the_second_switch_does_not_start(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path)
    env = settings_env(settings) | {"SIGNHUB_FAULT_CRASH_AT": POINT}
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "run", env=env, stderr=pipe,
                                                stdout=asyncio.subprocess.DEVNULL)  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the hub started (or hung) with a crash point and no second switch") from None
    finally:
        await _delete_topology(settings)  # nothing to delete unless it did start

    assert proc.returncode == 2 and b"SIGNHUB_ALLOW_FAULT_INJECTION" in err, err.decode()


async def test_an_armed_hub_warns_at_start_and_shows_the_point_on_readyz_and_metrics(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path)
    hub = HubProcess(settings, tmp_path / "hub.log")
    await hub.start(crash_at=POINT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
            ready = (await _answered(http, "/readyz")).json()
            metrics = (await http.get("/metrics")).text
    finally:
        await hub.stop()
        await _delete_topology(settings)

    assert ready["fault_injection"] == POINT
    assert f'signhub_fault_injection_armed{{point="{POINT}"}} 1.0' in metrics
    log = (tmp_path / "hub.log").read_text()
    assert "FAULT INJECTION ARMED" in log and '"level": "warning"' in log
