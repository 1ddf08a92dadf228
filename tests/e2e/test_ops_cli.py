"""`signhub ops ...` as a separate process on a running hub's store and broker: operators, cases,
a resolution and its refusals, dead messages, the audit log and its verification."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import Hub
from tests.support.console import PASSWORD, console_hub, duplicate_case
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    async with console_hub(Path(tmp_path_factory.mktemp("ops-cli"))) as pair:
        yield pair


async def ops(hub: Hub, *args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    s = hub.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNHUB_")} | {
        "SIGNHUB_STORE": s.store, "SIGNHUB_PREFIX": s.prefix, "SIGNHUB_BANKS": ",".join(s.banks),
        "SIGNHUB_PROVINCES": ",".join(s.provinces), "SIGNHUB_SEGMENTS": str(s.segments),
        "SIGNHUB_DATA_KEY": s.data_key.get_secret_value() if s.data_key else "", "SIGNHUB_OPS_PASSWORD": password,
        "SIGNHUB_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "ops", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _json(out: str) -> Any:
    return json.loads(out)


async def test_an_operator_made_from_the_shell_resolves_a_case(stack: tuple[Hub, Probe]) -> None:
    hub, probe = stack
    code, out, _ = await ops(hub, "operator", "add", "shelly", "--role", "operator")
    assert code == 0 and "shelly" in out
    d = await duplicate_case(hub, probe)
    code, out, _ = await ops(hub, "cases", "--state", "OPEN", "--as", "shelly")
    assert code == 0 and d["case_id"] in [c["case_id"] for c in _json(out)]
    code, _, err = await ops(hub, "resolve", d["case_id"], "KEEP_EXISTING", "--as", "shelly")
    assert code == 1 and "reason" in err
    code, _, err = await ops(hub, "resolve", d["case_id"], "KEEP_EXISTING", "--reason", "x", "--as", "vera")
    assert code == 3 and "viewer" in err
    code, _, err = await ops(hub, "cases", "--as", "shelly", password="wrong password")
    assert code == 1 and "wrong name or password" in err
    code, out, _ = await ops(
        hub, "resolve", d["case_id"], "KEEP_EXISTING", "--reason", "first wins", "--as", "shelly"
    )
    assert code == 0 and _json(out)["state"] == "RESOLVED"
    await probe.expect(
        "REJECTED", to("bank.CCB", "sign.result", status="REJECTED", request_id=d["request_id"])
    )


async def test_replace_from_the_shell_needs_another_approver(stack: tuple[Hub, Probe]) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    code, out, _ = await ops(hub, "resolve", d["case_id"], "REPLACE", "--reason", "asked", "--as", "alice")
    approval = _json(out)["approval_id"]
    assert code == 0
    assert (await ops(hub, "approve", approval, "--as", "alice"))[0] == 3
    code, out, _ = await ops(hub, "approve", approval, "--as", "bob")
    assert code == 0 and _json(out)["state"] == "RESOLVED"
    await probe.expect("ACTIVE", to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"]))


async def test_the_audit_log_verifies_and_exports_from_the_shell(stack: tuple[Hub, Probe]) -> None:
    hub, _ = stack
    code, out, _ = await ops(hub, "audit", "--verify", "--as", "vera")
    assert code == 0 and "intact" in out
    code, out, _ = await ops(hub, "audit", "--export", "csv", "--as", "vera")
    assert code == 0 and "case.KEEP_EXISTING" in out and "case.REPLACE.approved" in out
    code, out, _ = await ops(hub, "dead", "--groups", "--as", "vera")
    assert code == 0 and isinstance(_json(out), list)
