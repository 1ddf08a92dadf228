"""An operator resolves duplicate-signing cases through the hub: every message the contract lists."""

from __future__ import annotations

from typing import Any

import pytest

from hub.bootstrap import Hub
from hub.flows.duplicates import Resolution
from hub.services.operations import OperationRefused, resolve_case
from tests.support.data import confirmed, fresh_phone
from tests.support.flows import approve
from tests.support.probe import Probe, to


async def _duplicate(hub: Hub, probe: Probe) -> dict[str, Any]:
    """ICBC's agreement ACTIVE, CCB's confirmation of the same number held in a case."""
    phone = fresh_phone()
    requests = {bank: await approve(probe, bank, phone) for bank in ("ICBC", "CCB")}
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(requests["ICBC"]))
    active = await probe.expect(
        "ACTIVE", to("bank.ICBC", "sign.result", request_id=requests["ICBC"]["request_id"])
    )
    held = confirmed(requests["CCB"])
    held_mid = await probe.publish("bank.CCB", "sign.confirmed", held)
    await probe.expect("MANUAL_REVIEW", to("bank.CCB", "sign.result", status="MANUAL_REVIEW",
                                           request_id=requests["CCB"]["request_id"]))  # fmt: skip
    case = (await hub.store.query("SELECT case_id FROM cases WHERE phone=?", (phone,)))[0]
    return {"phone": phone, "case_id": case["case_id"], "existing": active.body, "held": held, "held_mid": held_mid,
            "request_id": requests["CCB"]["request_id"]}  # fmt: skip


async def test_replace_cancels_the_existing_agreement_and_activates_the_held_one(
    hub: Hub, probe: Probe
) -> None:
    d = await _duplicate(hub, probe)
    outcome = await resolve_case(
        hub.store, hub.deps, d["case_id"], Resolution.REPLACE, by="op1", reason="asked"
    )
    old_id = d["existing"]["agreement_id"]
    notice = await probe.expect("unsign.notice", to("bank.ICBC", "unsign.notice", agreement_id=old_id))
    notify = await probe.expect("unsign.notify", to("crm.GD", "unsign.notify", agreement_id=old_id))
    result = await probe.expect(
        "ACTIVE", to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"])
    )
    new = await probe.expect("sign.notify", lambda r: r.routing_key == "crm.GD.sign.notify"
                             and r.body["agreement_id"] == result.body["agreement_id"])  # fmt: skip
    assert notice.body["reason_code"] == notify.body["reason_code"] == "RESOLVED_BY_OPERATOR"
    assert notice.body["agreement_version"] == 2
    assert result.correlation_id == d["held_mid"] and new.body["bank_code"] == "CCB"
    assert len(outcome.messages) == 4
    rows = await hub.store.query(
        "SELECT bank, status FROM agreements WHERE phone=? ORDER BY bank", (d["phone"],)
    )
    assert rows == [{"bank": "CCB", "status": "ACTIVE"}, {"bank": "ICBC", "status": "CANCELLED"}]
    case = await hub.store.query(
        "SELECT state, resolved_by, reason FROM cases WHERE case_id=?", (d["case_id"],)
    )
    assert case == [{"state": "RESOLVED", "resolved_by": "op1", "reason": "REPLACE: asked"}]


async def test_keep_existing_refuses_the_held_confirmation_once(hub: Hub, probe: Probe) -> None:
    d = await _duplicate(hub, probe)
    await resolve_case(
        hub.store, hub.deps, d["case_id"], Resolution.KEEP_EXISTING, by="op2", reason="first wins"
    )
    refused = await probe.expect(
        "REJECTED", to("bank.CCB", "sign.result", status="REJECTED", request_id=d["request_id"])
    )
    assert refused.body["reason_code"] == "DUPLICATE_AGREEMENT" and refused.correlation_id == d["held_mid"]
    with pytest.raises(OperationRefused):
        await resolve_case(hub.store, hub.deps, d["case_id"], Resolution.REPLACE, by="op2", reason="again")
    rows = await hub.store.query(
        "SELECT bank, status FROM agreements WHERE phone=? ORDER BY bank", (d["phone"],)
    )
    assert rows == [{"bank": "CCB", "status": "REJECTED"}, {"bank": "ICBC", "status": "ACTIVE"}]
    assert not probe.all(to("bank.ICBC", "unsign.notice", agreement_id=d["existing"]["agreement_id"]))


async def test_a_resolution_needs_a_reason(hub: Hub, probe: Probe) -> None:
    d = await _duplicate(hub, probe)
    with pytest.raises(OperationRefused):
        await resolve_case(hub.store, hub.deps, d["case_id"], Resolution.REPLACE, by="op3", reason=" ")
