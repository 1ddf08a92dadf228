"""Flow 3, the bank against the hub, on the real broker and file area: the bank wins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from contracts.common import Scope
from hub import timeline
from hub.bootstrap import Hub
from hub.errors import StoreBusy
from hub.services.query import agreement_reports
from hub.services.reconciliation import Job, Reconciler
from hub.store.unit_of_work import Store
from simulators.recon_files import upload
from tests.support.data import fresh_phone
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, in_queue, to
from tests.support.recon import answered, bank_line, reconcile, signed, today


@pytest.fixture
async def hub_and_probe(tmp_path: Path) -> AsyncIterator[tuple[Hub, Probe]]:
    """A hub of its own per test: a MONTHLY file speaks for every agreement of its bank."""
    async with running_hub(tmp_path) as pair:
        yield pair


async def _agreement(hub: Hub, agreement_id: str) -> dict[str, object]:
    rows = await hub.store.query("SELECT * FROM agreements WHERE agreement_id=?", (agreement_id,))
    return rows[0]


async def test_each_bank_discrepancy_is_classified_counted_and_corrected(hub: Hub, probe: Probe) -> None:
    same, gone, cancelled, terms = [await signed(probe, "CCB") for _ in range(4)]
    newcomer = {"bank_agreement_no": "BANKONLY1", "phone": fresh_phone(), "signed_at": same["signed_at"]}
    records = [bank_line(same), bank_line(cancelled, status="CANCELLED"), bank_line(terms, amt="8000"),
               bank_line(newcomer)]  # fmt: skip
    answer = await answered(hub, probe, "bank.CCB", records)
    assert answer.body["status"] == "RECONCILED"
    assert answer.body["counts"] == {"MISSING_AT_HUB": 1, "MISSING_AT_BANK": 1, "STATUS_MISMATCH": 1,
                                     "TERMS_MISMATCH": 1}  # fmt: skip
    assert (await _agreement(hub, gone["agreement_id"]))["status"] == "CANCELLED"
    assert (await _agreement(hub, cancelled["agreement_id"]))["status"] == "CANCELLED"
    changed = await _agreement(hub, terms["agreement_id"])
    assert changed["recharge_amount"] == 8000 and changed["version"] == 2
    created = await hub.store.query(
        "SELECT * FROM agreements WHERE bank='CCB' AND bank_agreement_no='BANKONLY1'"
    )
    assert created[0]["status"] == "ACTIVE" and created[0]["province"] == "GD"
    history = await hub.store.query("SELECT source, change FROM agreement_history WHERE agreement_id=? ORDER BY id",
                                    (terms["agreement_id"],))  # fmt: skip
    assert history[-1] == {"source": "RECONCILIATION", "change": "RECONCILE"}
    report = timeline.render(
        (await agreement_reports(hub.store, terms["agreement_id"], datetime.now(UTC)))[0]
    )
    assert "corrected by reconciliation" in report and "TERMS_MISMATCH" in report
    untouched = await _agreement(hub, same["agreement_id"])
    assert untouched["version"] == 1


async def test_a_missing_at_hub_agreement_for_a_signed_number_opens_a_manual_case(
    hub: Hub, probe: Probe
) -> None:
    existing = await signed(probe, "ICBC")
    other = {
        "bank_agreement_no": "DUPLICATE1",
        "phone": existing["phone"],
        "signed_at": existing["signed_at"],
    }
    answer = await answered(hub, probe, "bank.CCB", [bank_line(other)])
    assert answer.body["counts"]["MISSING_AT_HUB"] == 1
    copy = await probe.expect(
        "manual copy", in_queue(f"{probe.prefix}.manual", **{"x-signhub-source": "RECONCILIATION"})
    )
    assert copy.headers["x-signhub-existing-agreement-id"] == existing["agreement_id"]
    held = await hub.store.query(
        "SELECT status FROM agreements WHERE bank='CCB' AND bank_agreement_no='DUPLICATE1'"
    )
    assert held == [{"status": "PENDING_REVIEW"}]
    assert (await _agreement(hub, existing["agreement_id"]))["status"] == "ACTIVE"


async def test_the_same_file_announced_twice_is_reconciled_once(hub: Hub, probe: Probe) -> None:
    a = await signed(probe, "ICBC")
    first = await answered(hub, probe, "bank.ICBC", [bank_line(a, amt="7000")], file_name="TWICE.txt")
    await reconcile(hub, probe, "bank.ICBC", [bank_line(a, amt="9000")], file_name="TWICE.txt", answer="none")
    answers = await probe.expect_count(
        "two answers", to("bank.ICBC", "recon.result", file_name="TWICE.txt"), 2
    )
    assert answers[1].body == first.body and answers[1].message_id == first.message_id
    assert (await _agreement(hub, a["agreement_id"]))["version"] == 2


async def test_a_monthly_file_is_compared_with_the_hub_as_of_its_business_date(
    hub: Hub, probe: Probe
) -> None:
    from datetime import timedelta

    from tests.support.recon import today

    signed_today = await signed(probe, "ICBC")
    answer = await answered(hub, probe, "bank.ICBC", [], day=today() - timedelta(days=1))
    assert sum(answer.body["counts"].values()) == 0  # it did not exist at yesterday's cut-off
    assert (await _agreement(hub, signed_today["agreement_id"]))["status"] == "ACTIVE"


class _FailsOnce:
    """The hub's store, whose `fail_at`-th unit of work fails once (a crash between two of them)."""

    def __init__(self, store: Any, fail_at: int) -> None:
        self._store, self._left = store, fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def unit_of_work(self) -> Any:
        self._left -= 1
        if self._left == 0:
            raise StoreBusy("the store went away")
        return self._store.unit_of_work()


async def test_a_reconciliation_that_failed_midway_goes_on_without_correcting_twice(
    hub: Hub, probe: Probe
) -> None:
    agreements = [await signed(probe, "ICBC") for _ in range(3)]
    made = upload(Path(hub.settings.files), "bank.ICBC", today(), Scope.MONTHLY,
                  [bank_line(a, amt="7100") for a in agreements])  # fmt: skip
    row = {"party": "bank.ICBC", "file_name": made.path.name, "business_date": today().isoformat(),
           "scope": "MONTHLY", "record_count": 3, "sha256": made.announcement.sha256, "message_id": "op-1",
           "state": "OPERATOR", "received_at": "2026-11-26T00:00:00.000000+00:00"}  # fmt: skip
    async with hub.store.unit_of_work() as uow:
        await uow.recon().add_file(row)
    files = Path(hub.settings.files)
    flaky = Reconciler(
        cast(Store, _FailsOnce(hub.store, 2)), hub.deps, files, hub.settings.store, lambda: None
    )
    with pytest.raises(StoreBusy):  # the corrections are committed, the answer is not
        await flaky.reconcile(Job.of(row | {"progress": 0}, files), row | {"progress": 0, "counts": None})
    saved = (await hub.store.query("SELECT * FROM recon_files WHERE file_name=?", (made.path.name,)))[0]
    assert saved["state"] == "OPERATOR" and saved["progress"] > 0
    again = Reconciler(hub.store, hub.deps, files, hub.settings.store, lambda: None)
    await again.reconcile(Job.of(saved, files), saved)
    done = (
        await hub.store.query("SELECT state, counts FROM recon_files WHERE file_name=?", (made.path.name,))
    )[0]
    assert done["state"] == "RECONCILED" and '"TERMS_MISMATCH": 3' in done["counts"]
    for a in agreements:
        assert (await _agreement(hub, a["agreement_id"]))["version"] == 2  # corrected once


async def test_a_cancelled_agreement_the_bank_has_active_is_reactivated_unless_its_number_signed_again(
    hub: Hub, probe: Probe
) -> None:
    back, taken = [await signed(probe, "ICBC") for _ in range(2)]
    cancelled = [bank_line(back, status="CANCELLED"), bank_line(taken, status="CANCELLED")]
    first = await answered(hub, probe, "bank.ICBC", cancelled, file_name="CANCEL.txt")
    assert first.body["counts"]["STATUS_MISMATCH"] == 2
    again = await signed(probe, "CCB", phone=taken["phone"])  # the number signed again elsewhere
    second = await answered(
        hub, probe, "bank.ICBC", [bank_line(back), bank_line(taken)], file_name="AGAIN.txt"
    )
    assert second.body["counts"]["STATUS_MISMATCH"] == 2
    reactivated = await _agreement(hub, back["agreement_id"])
    assert reactivated["status"] == "ACTIVE" and reactivated["version"] == 3
    assert (await _agreement(hub, taken["agreement_id"]))["status"] == "PENDING_REVIEW"
    assert (await _agreement(hub, again["agreement_id"]))["status"] == "ACTIVE"
    copy = await probe.expect(
        "manual copy", in_queue(f"{probe.prefix}.manual", **{"x-signhub-source": "RECONCILIATION"})
    )
    assert copy.headers["x-signhub-existing-agreement-id"] == again["agreement_id"]
    history = await hub.store.query(
        "SELECT version, source, after FROM agreement_history WHERE agreement_id=? ORDER BY id",
        (back["agreement_id"],),
    )
    assert [(h["version"], h["source"]) for h in history][-2:] == [
        (2, "RECONCILIATION"),
        (3, "RECONCILIATION"),
    ]
    assert '"status": "ACTIVE"' in history[-1]["after"]


async def test_a_number_freed_by_the_same_file_takes_the_bank_s_new_agreement_without_a_case(
    hub: Hub, probe: Probe
) -> None:
    gone = await signed(probe, "ICBC")
    newcomer = {"bank_agreement_no": "REPLACES1", "phone": gone["phone"], "signed_at": gone["signed_at"]}
    answer = await answered(hub, probe, "bank.ICBC", [bank_line(newcomer)])
    assert answer.body["counts"] == {"MISSING_AT_HUB": 1, "MISSING_AT_BANK": 1, "STATUS_MISMATCH": 0,
                                     "TERMS_MISMATCH": 0}  # fmt: skip
    assert (await _agreement(hub, gone["agreement_id"]))["status"] == "CANCELLED"
    created = await hub.store.query(
        "SELECT status, version FROM agreements WHERE bank='ICBC' AND bank_agreement_no='REPLACES1'"
    )
    assert created == [{"status": "ACTIVE", "version": 1}]
    assert await hub.store.query("SELECT case_id FROM cases") == []
