"""A reconciliation round as the parties run it (flow 3): every bank uploads its file and waits
for `recon.result`; then every province uploads its file, applies the error-handling file it gets
back and answers `errors.applied`. Discrepancies are injected first when asked. Used by the demo,
by `signhub simulate --recon-every` and by the tests."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from contracts.common import Scope
from simulators import recon_files
from simulators.bank import BankSimulator
from simulators.fleet import Simulators
from simulators.timefmt import SHANGHAI

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RoundOutcome:
    injected: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # party -> class -> keys
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # bank -> recon.result body
    applied: dict[str, tuple[int, int]] = field(default_factory=dict)  # province -> (applied, failed)


async def send_bank_file(bank: BankSimulator, files: Path, day: date, scope: Scope) -> str:
    """The bank writes its file from its own agreements and announces it; returns the file name."""
    records = recon_files.bank_records(bank.agreements.values(), day, scope)
    uploaded = recon_files.upload(files, str(bank.client.party), day, scope, records)
    await bank.client.publish("recon.file", uploaded.announcement)
    return uploaded.announcement.file_name


async def reconcile_round(sims: Simulators, files: Path, *, scope: Scope = Scope.MONTHLY, day: date | None = None,
                          drift_each: int = 0, seed: int = 0, timeout: float = 60.0) -> RoundOutcome:  # fmt: skip
    day = day or datetime.now(SHANGHAI).date()
    rng = random.Random(seed)
    outcome = RoundOutcome()
    bank_drifted: set[str] = set()  # numbers the banks' drift touched
    if drift_each:
        for code, bank in sims.banks.items():
            phones = {no: a.phone for no, a in bank.agreements.items()}
            outcome.injected[f"bank.{code}"] = recon_files.drift_bank(bank.agreements, drift_each, rng)
            bank_drifted |= {phones[no] for nos in outcome.injected[f"bank.{code}"].values() for no in nos
                             if no in phones}  # fmt: skip
    for code, bank in sorted(sims.banks.items()):
        name = await send_bank_file(bank, files, day, scope)
        await bank.recorder.wait_until(lambda b=bank, n=name: _result(b, n) is not None,  # type: ignore[misc]
                                       f"recon.result for {name}", timeout)  # fmt: skip
        outcome.results[code] = _result(bank, name) or {}
    if drift_each:
        for code, crm in sims.crms.items():
            outcome.injected[f"crm.{code}"] = recon_files.drift_crm(crm.agreements, drift_each, rng,
                                                                            frozenset(bank_drifted))
    for code, crm in sorted(sims.crms.items()):
        name = await crm.upload_file(day, scope)
        errors = f"ERR_{name}"[:64]
        await crm.wait_until(lambda c=crm, e=errors: e in c.errors_applied, f"error file for {name}", timeout)  # type: ignore[misc]
        outcome.applied[code] = crm.errors_applied[errors]
    return outcome


def _result(bank: BankSimulator, file_name: str) -> dict[str, Any] | None:
    for got in bank.recorder.received:
        if got.msg_type == "recon.result" and got.body.get("file_name") == file_name:
            return got.body
    return None


async def reconcile_every(sims: Simulators, files: Path, every_s: float) -> None:
    """`signhub simulate --recon-every`: a DAILY round for today every `every_s` seconds."""
    while True:
        await asyncio.sleep(every_s)
        try:
            outcome = await reconcile_round(sims, files, scope=Scope.DAILY)
            log.info("reconciliation round: %s; provinces %s", outcome.results, outcome.applied)
        except Exception:
            log.exception("reconciliation round failed")
