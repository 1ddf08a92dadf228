"""The console on a hub whose store is PostgreSQL: claims, four-eyes REPLACE, a discard, and the
audit chain, through the API (the same code as on SQLite, other SQL underneath)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.bootstrap import Hub
from tests.support.console import PASSWORD, base_url, console_hub, duplicate_case
from tests.support.data import fresh_phone, sign_request
from tests.support.pg import fresh_database
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    async with (
        fresh_database() as url,
        console_hub(Path(tmp_path_factory.mktemp("ops-pg")), store=url) as pair,
    ):
        yield pair


async def _as(api: httpx.AsyncClient, name: str) -> dict[str, str]:
    response = await api.post("/api/ops/login", json={"name": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_replace_and_discard_on_postgres_leave_a_verified_audit_chain(stack: tuple[Hub, Probe]) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    async with httpx.AsyncClient(base_url=base_url(hub), timeout=30) as api:
        alice, bob = await _as(api, "alice"), await _as(api, "bob")
        listed = (
            await api.get("/api/ops/cases", params={"state": "OPEN", "min_age_s": 0}, headers=alice)
        ).json()
        assert d["case_id"] in [c["case_id"] for c in listed]
        proposed = (await api.post(f"/api/ops/cases/{d['case_id']}/resolve",
                                   json={"resolution": "REPLACE", "reason": "asked"}, headers=alice)).json()  # fmt: skip
        approve = f"/api/ops/approvals/{proposed['approval_id']}/approve"
        assert (await api.post(approve, headers=alice)).status_code == 403
        assert (await api.post(approve, headers=bob)).json()["manual_copy_removed"] is True
        await probe.expect(
            "ACTIVE", to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"])
        )
        mid = await probe.publish("bank.ICBC", "sign.request", sign_request(fresh_phone(), channel="FAX"))
        await probe.expect("message.rejected", to("bank.ICBC", "message.rejected", message_id=mid))
        groups = (await api.get("/api/ops/dead/groups", headers=alice)).json()
        assert [g["count"] for g in groups if g["sender"] == "bank.ICBC"] == [1]
        dead = (await api.get("/api/ops/dead", headers=alice)).json()[0]
        gone = await api.post(
            f"/api/ops/dead/{dead['dead_id']}/discard", json={"reason": "test"}, headers=alice
        )
        assert gone.json()["dead_copy_removed"] is True
        verdict = (await api.get("/api/ops/audit/verify", headers=bob)).json()
        assert verdict["ok"] is True and verdict["rows"] >= 6
