"""Steps of flow 2 that many end-to-end tests start from, played by the probe as bank and CRM."""

from __future__ import annotations

from typing import Any

from tests.support.data import sign_request, verify_ok_prepaid
from tests.support.probe import Probe, to


async def approve(probe: Probe, bank: str, phone: str, **terms: Any) -> dict[str, Any]:
    """`bank` asks to sign `phone`, the home CRM (crm.GD) approves; returns the sign.request body."""
    request = sign_request(phone)
    await probe.publish(f"bank.{bank}", "sign.request", request)
    ask = await probe.expect(f"verify.request for {bank}", lambda r: r.type == "verify.request"
                             and r.body["phone"] == phone and r.body["bank_code"] == bank)  # fmt: skip
    await probe.publish("crm.GD", "verify.response", dict(verify_ok_prepaid(ask.body["verify_id"]), **terms))
    await probe.expect("approval", to(f"bank.{bank}", "sign.response", request_id=request["request_id"]))
    return request
