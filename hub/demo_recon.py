"""The demo's reconciliation round (flow 3): every bank and province uploads its MONTHLY file with
one injected discrepancy of each class; the hub corrects itself from the banks, sends each
province its error-handling file, which the CRM applies; every province must end balanced."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.bootstrap import Hub
from simulators.fleet import Simulators
from simulators.recon_round import reconcile_round


async def reconcile_in_demo(hub: Hub, sims: Simulators, files: Path, seed: int) -> int:
    """Prints what happened; 0 when every file was reconciled and every province is balanced."""
    outcome = await reconcile_round(sims, files, drift_each=1, seed=seed)
    print("reconciliation (flow 3): MONTHLY files, one injected discrepancy of each class per party")
    ok = True
    for bank, result in sorted(outcome.results.items()):
        ok &= result.get("status") == "RECONCILED"
        print(f"  bank.{bank}: {result.get('status')} {result.get('counts')}")
    for province, (applied, failed) in sorted(outcome.applied.items()):
        state = await _state(hub, f"crm.{province}")
        ok &= failed == 0 and state == "BALANCED"
        print(f"  crm.{province}: error-handling file applied {applied}, failed {failed}; {state}")
    print("  reconciliation as expected" if ok else "  reconciliation NOT as expected")
    return 0 if ok else 1


async def _state(hub: Hub, party: str) -> str:
    state = ""
    for _ in range(100):  # errors.applied is on its way: up to 10 s
        state = await hub.store.recon_files().latest_state(party) or "no file"
        if state != "ERRORS_SENT":
            break
        await asyncio.sleep(0.1)
    return state
