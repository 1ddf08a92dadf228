"""Reconciliation in tests: signed agreements through the real hub, files in the file area,
announcements and answers through the probe."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from contracts.common import Scope
from hub.bootstrap import Hub
from simulators.recon_files import upload
from simulators.timefmt import SHANGHAI
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.probe import Probe, Received, to


def today() -> date:
    return datetime.now(SHANGHAI).date()


async def signed(
    probe: Probe, bank: str = "ICBC", phone: str | None = None, **confirm: Any
) -> dict[str, Any]:
    """A fresh Guangdong number signed at `bank`: the sign.result body plus phone and terms."""
    phone = phone or fresh_phone()
    request = sign_request(phone)
    earlier = {id(r) for r in probe.received}  # a number signed before was asked about before
    await probe.publish(f"bank.{bank}", "sign.request", request)
    ask = await probe.expect(
        "verify.request",
        lambda r: r.type == "verify.request" and r.body["phone"] == phone and id(r) not in earlier,
    )
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("approval", to(f"bank.{bank}", "sign.response", request_id=request["request_id"]))
    await probe.publish(f"bank.{bank}", "sign.confirmed", confirmed(request, **confirm))
    result = await probe.expect("ACTIVE", to(f"bank.{bank}", "sign.result", request_id=request["request_id"]))
    assert result.body["status"] == "ACTIVE"
    return dict(result.body, phone=phone, signed_at="2026-11-26T10:01:00+08:00")


def bank_line(a: dict[str, Any], **over: str) -> tuple[str, ...]:
    """The bank's record of a signed agreement (threshold 1000, amount 5000, no auto-pay)."""
    fields = {"bank_agreement_no": a["bank_agreement_no"], "phone": a["phone"], "last4": "3445", "status": "ACTIVE",
              "user_type": "PREPAID", "thr": "1000", "amt": "5000", "auto_pay": "N", "signed_at": a["signed_at"],
              "changed_at": a.get("changed_at", a["signed_at"])}  # fmt: skip
    fields.update(over)
    return tuple(fields.values())


def crm_line(a: dict[str, Any], **over: str) -> tuple[str, ...]:
    fields = {"agreement_id": a["agreement_id"], "phone": a["phone"], "bank_code": a.get("bank", "ICBC"),
              "status": "ACTIVE", "user_type": "PREPAID", "thr": "1000", "amt": "5000", "auto_pay": "N",
              "changed_at": a.get("changed_at", a["signed_at"])}  # fmt: skip
    fields.update(over)
    return tuple(fields.values())


async def answered(
    hub: Hub, probe: Probe, sender: str, records: list[tuple[str, ...]], **kw: Any
) -> Received:
    answer = await reconcile(hub, probe, sender, records, **kw)
    assert answer is not None
    return answer


async def reconcile(hub: Hub, probe: Probe, sender: str, records: list[tuple[str, ...]], *,
                    scope: Scope = Scope.MONTHLY, day: date | None = None, answer: str = "recon.result",
                    file_name: str | None = None) -> Received | None:  # fmt: skip
    """Uploads and announces a file as `sender`; returns the hub's answer (or None for `answer="none"`:
    a repeat's copy keeps the first answer's correlation_id)."""
    uploaded = upload(Path(hub.settings.files), sender, day or today(), scope, records, file_name)
    mid = await probe.publish(sender, "recon.file", uploaded.announcement.model_dump(mode="json"))
    if answer == "none":
        return None
    return await probe.expect(f"{answer} to {uploaded.announcement.file_name}",
                              lambda r: r.correlation_id == mid and r.type in (answer, "recon.result"),
                              timeout=20)  # fmt: skip


async def announce_raw(probe: Probe, sender: str, body: dict[str, Any]) -> Received:
    mid = await probe.publish(sender, "recon.file", body)
    return await probe.expect("answer", lambda r: r.correlation_id == mid, timeout=20)
