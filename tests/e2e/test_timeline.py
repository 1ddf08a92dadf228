"""The agreement's timeline across bank, hub, CRM and BOSS, over HTTP (the console's API, as a
viewer) and from the CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import httpx

from hub.bootstrap import Hub
from hub.console.auth import Role, create_operator
from tests.e2e.test_lifecycle import _answer, _signed
from tests.support.console import PASSWORD, bearer
from tests.support.probe import Probe, to


async def test_the_timeline_shows_every_step_of_a_full_flow_and_what_is_outstanding(
    hub: Hub, probe: Probe
) -> None:
    a = await _signed(probe)
    await create_operator(hub.store, "tess", Role.VIEWER, PASSWORD, by="test", now=datetime.now(UTC))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.settings.http_port}") as client:
        client.headers.update(await bearer(client, "tess"))
        url = f"/api/ops/agreements/{a['phone']}"
        before = (await client.get(url)).json()["agreements"][0]
        assert any("sign.synced" in o for o in before["outstanding"])
        await probe.publish("crm.GD", "sign.synced", {"agreement_id": a["agreement_id"], "result": "OK"})
        sync = {"agreement_id": a["agreement_id"], "phone": a["phone"], "action": "ADD"}
        await probe.publish("crm.GD", "boss.sync", sync)
        relayed = await probe.expect(
            "agreement.sync", to("boss.GD", "agreement.sync", agreement_id=a["agreement_id"])
        )
        await probe.publish("boss.GD", "agreement.synced", {"agreement_id": a["agreement_id"], "result": "OK"},
                            correlation_id=relayed.message_id)  # fmt: skip
        await probe.expect("boss.synced", to("crm.GD", "boss.synced", agreement_id=a["agreement_id"]))
        modify = {"phone": a["phone"], "recharge_amount": 3000}
        await _answer(probe, await probe.publish("crm.GD", "modify.request", modify))
        report = (await client.get(url)).json()["agreements"][0]
        missing = await client.get("/api/ops/agreements/13000000000")
    events = [e["event"] for e in report["timeline"]]
    for step in ("sign.requested", "crm.verified", "agreement.active", "crm.synced", "boss.sync.relayed",
                 "boss.synced", "agreement.modify"):  # fmt: skip
        assert step in events, (step, events)
    assert events.index("sign.requested") < events.index("crm.verified") < events.index("agreement.active")
    assert all(e["message_id"] for e in report["timeline"])
    assert [c["change"] for c in report["changes"]] == ["SIGN", "MODIFY"]
    assert report["changes"][1]["before"]["recharge_amount"] == 5000
    assert report["changes"][1]["after"]["recharge_amount"] == 3000
    assert report["outstanding"] == ["boss.GD has not confirmed version 2 for 0 minutes"]
    assert "account_enc" not in report["agreement"] and report["agreement"]["account_last4"] == "3445"
    assert missing.status_code == 404

    env = dict(os.environ, SIGNHUB_STORE=hub.settings.store)
    cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "agreement", "show", a["agreement_id"],
                                               env=env, stdout=asyncio.subprocess.PIPE)  # fmt: skip
    out, _ = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 0
    text = out.decode()
    assert a["agreement_id"] in text and "terms modified" in text and "BOSS answered the sync" in text
