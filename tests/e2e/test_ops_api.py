"""The operations console's HTTP API on a running hub and the real broker: every endpoint, with
its refusals (no session, wrong role, missing reason, self-approval), and what each action sends."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.bootstrap import Hub
from tests.support.console import PASSWORD, base_url, console_hub, duplicate_case, queue_depth
from tests.support.data import CARD, fresh_phone, sign_request
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker
MASKED_CARD = re.compile(r"^\d{6}\*+\d{4}$")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    async with console_hub(Path(tmp_path_factory.mktemp("ops"))) as pair:
        yield pair


@pytest.fixture(scope="module")
async def api(stack: tuple[Hub, Probe]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(stack[0]), timeout=30) as client:
        yield client


async def _as(api: httpx.AsyncClient, name: str) -> dict[str, str]:
    response = await api.post("/api/ops/login", json={"name": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _dead(hub: Hub, probe: Probe, **over: Any) -> dict[str, Any]:
    request = sign_request(fresh_phone(), **({"channel": "CARRIER_PIGEON"} | over))
    mid = await probe.publish("bank.ICBC", "sign.request", request)
    await probe.expect("message.rejected", to("bank.ICBC", "message.rejected", message_id=mid))
    row = (await hub.store.query("SELECT dead_id FROM dead_messages WHERE message_id=?", (mid,)))[0]
    return {"dead_id": row["dead_id"], "message_id": mid, "request": request}


async def test_every_call_needs_a_session_and_a_wrong_password_is_refused(api: httpx.AsyncClient) -> None:
    for path in ("/api/ops/cases", "/api/ops/dead", "/api/ops/audit", "/api/ops/me"):
        assert (await api.get(path)).status_code == 401
    assert (await api.post("/api/ops/login", json={"name": "alice", "password": "nope"})).status_code == 401
    bogus = {"Authorization": "Bearer not-a-session"}
    assert (await api.get("/api/ops/cases", headers=bogus)).status_code == 401
    me = await api.get("/api/ops/me", headers=await _as(api, "vera"))
    assert me.json() == {"name": "vera", "role": "viewer"}


async def test_a_viewer_sees_but_cannot_act(api: httpx.AsyncClient, stack: tuple[Hub, Probe]) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    vera = await _as(api, "vera")
    assert (await api.get(f"/api/ops/cases/{d['case_id']}", headers=vera)).status_code == 200
    for path, body in ((f"/api/ops/cases/{d['case_id']}/claim", None),
                       (f"/api/ops/cases/{d['case_id']}/resolve", {"resolution": "KEEP_EXISTING", "reason": "x"}),
                       ("/api/ops/dead/D1/replay", None), ("/api/ops/dead/D1/discard", {"reason": "x"}),
                       ("/api/ops/operators", {"name": "eve", "role": "admin", "password": PASSWORD})):  # fmt: skip
        assert (await api.post(path, json=body, headers=vera)).status_code == 403, path
    alice = await _as(api, "alice")
    assert (await api.get("/api/ops/operators", headers=alice)).status_code == 403


async def test_replace_waits_for_a_second_approver_and_then_sends_every_message(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe]
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    manual = hub.deps.names.manual_queue
    alice, olga, bob = await _as(api, "alice"), await _as(api, "olga"), await _as(api, "bob")
    listed = (await api.get("/api/ops/cases", params={"province": "GD", "bank": "CCB", "state": "OPEN"},
                            headers=alice)).json()  # fmt: skip
    assert d["case_id"] in [c["case_id"] for c in listed]
    assert (await api.get("/api/ops/cases", params={"min_age_s": 3600}, headers=alice)).json() == []
    page = (await api.get(f"/api/ops/cases/{d['case_id']}", headers=alice)).json()
    assert MASKED_CARD.match(page["incoming"]["account_no"]) and CARD not in str(page)
    assert page["existing"]["agreement"]["status"] == "ACTIVE" and page["held"]["timeline"]
    assert (await api.post(f"/api/ops/cases/{d['case_id']}/claim", headers=alice)).json()[
        "claimed_by"
    ] == "alice"
    assert (await api.post(f"/api/ops/cases/{d['case_id']}/claim", headers=olga)).status_code == 409
    resolve = f"/api/ops/cases/{d['case_id']}/resolve"
    assert (
        await api.post(resolve, json={"resolution": "REPLACE", "reason": " "}, headers=alice)
    ).status_code == 422
    assert (
        await api.post(resolve, json={"resolution": "REPLACE", "reason": "x"}, headers=olga)
    ).status_code == 409
    proposed = (await api.post(resolve, json={"resolution": "REPLACE", "reason": "customer asked at CCB"},
                               headers=alice)).json()  # fmt: skip
    assert proposed["state"] == "PENDING_APPROVAL"
    approve = f"/api/ops/approvals/{proposed['approval_id']}/approve"
    assert (await api.post(approve, headers=alice)).status_code == 403  # four-eyes: not one's own
    assert (await api.post(approve, headers=olga)).status_code == 403  # an operator cannot approve
    assert not probe.all(to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"]))
    assert await queue_depth(hub, manual) >= 1
    done = (await api.post(approve, headers=bob)).json()
    assert done["state"] == "RESOLVED" and done["manual_copy_removed"] is True
    old = d["existing"]["agreement_id"]
    await probe.expect("unsign.notice", to("bank.ICBC", "unsign.notice", agreement_id=old,
                                           reason_code="RESOLVED_BY_OPERATOR"))  # fmt: skip
    await probe.expect("unsign.notify", to("crm.GD", "unsign.notify", agreement_id=old))
    result = await probe.expect(
        "ACTIVE", to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"])
    )
    await probe.expect("sign.notify", to("crm.GD", "sign.notify", agreement_id=result.body["agreement_id"]))
    assert result.correlation_id == d["held_mid"]
    assert (await api.post(approve, headers=bob)).status_code == 409
    actions = [a["action"] for a in (await api.get("/api/ops/audit", params={"target": d["case_id"]},
                                                   headers=bob)).json()]  # fmt: skip
    assert actions == ["case.claim", "case.REPLACE.proposed", "case.REPLACE.approved", "case.REPLACE"]


async def test_keep_existing_takes_effect_at_once(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe], caplog: pytest.LogCaptureFixture
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    olga = await _as(api, "olga")
    with caplog.at_level(logging.INFO, logger="signhub.console"):
        keep = {"resolution": "KEEP_EXISTING", "reason": "first wins"}
        done = (await api.post(f"/api/ops/cases/{d['case_id']}/resolve", json=keep, headers=olga)).json()
    assert done["state"] == "RESOLVED" and done["manual_copy_removed"] is True
    logged = [r for r in caplog.records if d["case_id"] in r.getMessage()]
    assert logged and getattr(logged[0], "agreement_id", None) and getattr(logged[0], "flow", None)
    refused = await probe.expect(
        "REJECTED", to("bank.CCB", "sign.result", status="REJECTED", request_id=d["request_id"])
    )
    assert refused.body["reason_code"] == "DUPLICATE_AGREEMENT"
    assert (await api.get("/api/ops/cases", params={"state": "RESOLVED"}, headers=olga)).json()


async def test_a_proposal_can_be_refused_with_a_reason(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe]
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    alice, bob = await _as(api, "alice"), await _as(api, "bob")
    proposed = (await api.post(f"/api/ops/cases/{d['case_id']}/resolve",
                               json={"resolution": "REPLACE", "reason": "maybe"}, headers=alice)).json()  # fmt: skip
    pending = (await api.get("/api/ops/approvals", headers=bob)).json()
    assert proposed["approval_id"] in [p["approval_id"] for p in pending]
    refuse = f"/api/ops/approvals/{proposed['approval_id']}/refuse"
    assert (await api.post(refuse, json={"reason": ""}, headers=bob)).status_code == 422
    assert (await api.post(refuse, json={"reason": "no proof"}, headers=bob)).json()["state"] == "REFUSED"
    case = (await api.get(f"/api/ops/cases/{d['case_id']}", headers=bob)).json()["case"]
    assert case["state"] == "OPEN" and case["approval_id"] is None


async def test_a_dead_message_is_grouped_inspected_masked_and_discarded(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe]
) -> None:
    hub, probe = stack
    dead = await _dead(hub, probe)
    alice = await _as(api, "alice")
    groups = (await api.get("/api/ops/dead/groups", headers=alice)).json()
    assert any(g["reason"] == "INVALID_MESSAGE" and g["sender"] == "bank.ICBC" for g in groups)
    one = (await api.get(f"/api/ops/dead/{dead['dead_id']}", headers=alice)).json()
    assert MASKED_CARD.match(one["body"]["account_no"]) and CARD not in str(one)
    assert one["model"] == "SignRequest" and "channel" in one["editable"]
    discard = f"/api/ops/dead/{dead['dead_id']}/discard"
    assert (await api.post(discard, json={"reason": ""}, headers=alice)).status_code == 422
    done = (await api.post(discard, json={"reason": "test message"}, headers=alice)).json()
    assert done["state"] == "DISCARDED" and done["dead_copy_removed"] is True
    assert (await api.post(discard, json={"reason": "again"}, headers=alice)).status_code == 409
    assert (await api.get("/api/ops/dead/D-none", headers=alice)).status_code == 404


async def test_an_edited_replay_is_validated_previewed_and_sent_after_approval(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe]
) -> None:
    hub, probe = stack
    dead = await _dead(hub, probe)
    alice, bob = await _as(api, "alice"), await _as(api, "bob")
    edit = f"/api/ops/dead/{dead['dead_id']}/edit"
    assert (
        await api.post(edit, json={"changes": {"channel": "ONLINE"}, "reason": ""}, headers=alice)
    ).status_code == 422
    unknown = await api.post(edit, json={"changes": {"colour": "red"}, "reason": "fix"}, headers=alice)
    assert unknown.status_code == 409 and "colour" in unknown.text
    invalid = await api.post(edit, json={"changes": {"channel": "FAX"}, "reason": "fix"}, headers=alice)
    assert invalid.status_code == 409 and "channel" in invalid.text
    masked = (await api.get(f"/api/ops/dead/{dead['dead_id']}", headers=alice)).json()["body"]["account_no"]
    proposed = (await api.post(edit, json={"changes": {"channel": "ONLINE", "account_no": masked},
                                           "reason": "bank sent a wrong channel"}, headers=alice)).json()  # fmt: skip
    pending = {p["approval_id"]: p for p in (await api.get("/api/ops/approvals", headers=bob)).json()}
    preview = pending[proposed["approval_id"]]["preview"]
    assert preview["home_province"] == "GD" and preview["queue"].endswith(".hub.inbound")
    assert preview["changed"] == {"channel": {"before": "CARRIER_PIGEON", "after": "ONLINE"}}
    approve = f"/api/ops/approvals/{proposed['approval_id']}/approve"
    assert (await api.post(approve, headers=alice)).status_code == 403
    done = (await api.post(approve, headers=bob)).json()
    assert done["state"] == "REPLAYED" and done["dead_copy_removed"] is True
    ask = await probe.expect("verify.request", lambda r: r.type == "verify.request"
                             and r.body["phone"] == dead["request"]["phone"])  # fmt: skip
    assert ask.routing_key == "crm.GD.verify.request"


async def test_a_plain_replay_and_a_group_action_at_a_rate(
    api: httpx.AsyncClient, stack: tuple[Hub, Probe]
) -> None:
    hub, probe = stack
    first = await _dead(hub, probe)
    alice = await _as(api, "alice")
    replayed = (await api.post(f"/api/ops/dead/{first['dead_id']}/replay", headers=alice)).json()
    assert replayed["state"] == "REPLAYED" and replayed["dead_copy_removed"] is True
    # the stored original is still invalid: refused again, as a new dead message
    await probe.expect_count(
        "second refusal", to("bank.ICBC", "message.rejected", message_id=first["message_id"]), 2
    )
    group = {"reason": "INVALID_MESSAGE", "sender": "bank.ICBC", "action": "discard", "why": ""}
    assert (await api.post("/api/ops/dead/groups/action", json=group, headers=alice)).status_code == 422
    done = (
        await api.post("/api/ops/dead/groups/action", json=group | {"why": "cleanup"}, headers=alice)
    ).json()
    assert done["done"] and not done["failed"]
    assert await queue_depth(hub, hub.deps.names.dead_queue) == 0
    assert not (await api.get("/api/ops/dead", headers=alice)).json()


async def test_the_audit_log_is_viewable_exportable_and_verified(api: httpx.AsyncClient) -> None:
    vera = await _as(api, "vera")
    rows = (await api.get("/api/ops/audit", headers=vera)).json()
    assert {"operator.sign_in", "dead.discard"} <= {r["action"] for r in rows}
    assert (await api.get("/api/ops/audit/verify", headers=vera)).json()["ok"] is True
    csv = await api.get("/api/ops/audit/export", params={"format": "csv"}, headers=vera)
    assert csv.text.startswith("seq,at,actor,action") and CARD not in csv.text
    jsonl = await api.get("/api/ops/audit/export", headers=vera)
    assert len(jsonl.text.splitlines()) >= len(rows)


async def test_an_admin_creates_operators(api: httpx.AsyncClient) -> None:
    root = await _as(api, "root")
    new = {"name": "nina", "role": "approver", "password": PASSWORD}
    assert (await api.post("/api/ops/operators", json=new, headers=root)).status_code == 201
    assert (await api.post("/api/ops/operators", json=new, headers=root)).status_code == 409
    assert "nina" in [o["name"] for o in (await api.get("/api/ops/operators", headers=root)).json()]
    assert (await api.post("/api/ops/logout", headers=root)).status_code == 200
    assert (await api.get("/api/ops/me", headers=root)).status_code == 401


async def test_metrics_health_readiness_openapi_and_the_contract_page(api: httpx.AsyncClient) -> None:
    metrics = (await api.get("/metrics")).text
    names = ("messages_in_total", "messages_out_total", "flow_outcomes_total", "processing_seconds_bucket",
             "outbox_backlog", "outbox_oldest_age_seconds", "dead_messages", "manual_cases", "queue_depth",
             "intake_total")  # fmt: skip
    for name in names:
        assert f"signhub_{name}" in metrics, name
    assert 'signhub_messages_in_total{party="bank.ICBC",type="sign.request"}' in metrics
    assert (await api.get("/readyz")).json()["status"] == "ready"
    assert (await api.get("/healthz")).status_code == 200
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {
        "/api/ops/cases",
        "/api/ops/approvals/{approval_id}/approve",
        "/api/ops/dead/{dead_id}/edit",
    } <= set(paths)
    page = await api.get("/contract")
    assert page.status_code == 200 and "sign.request" in page.text and "account_no" in page.text


async def test_the_intake_logs_carry_the_message_ids(
    stack: tuple[Hub, Probe], caplog: pytest.LogCaptureFixture
) -> None:
    hub, probe = stack
    with caplog.at_level(logging.INFO, logger="signhub.intake"):
        dead = await _dead(hub, probe)
    refused = [r for r in caplog.records if getattr(r, "message_id", None) == dead["message_id"]]
    assert refused and refused[0].sender == "bank.ICBC" and refused[0].msg_type == "sign.request"  # type: ignore[attr-defined]
