"""`signhub recon`: an operator reconciles a party's file by hand; the party gets the answer."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.common import Scope
from hub.bootstrap import Hub
from hub.console.recon_cli import run_recon
from simulators.recon_files import upload
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, to
from tests.support.recon import bank_line, signed, today


@pytest.fixture
async def hub_and_probe(tmp_path: Path) -> AsyncIterator[tuple[Hub, Probe]]:
    async with running_hub(tmp_path) as pair:
        yield pair


async def test_an_operator_runs_a_bank_file_by_hand_and_the_bank_gets_its_result(
    hub: Hub, probe: Probe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = await signed(probe, "ICBC")
    made = upload(tmp_path / "elsewhere", "bank.ICBC", today(), Scope.MONTHLY, [bank_line(a, amt="6600")])
    args = argparse.Namespace(action="run", party="bank.ICBC", file=made.path)
    assert await run_recon(hub.settings, args) == 0
    assert '"TERMS_MISMATCH": 1' in capsys.readouterr().out
    result = await probe.expect("recon.result", to("bank.ICBC", "recon.result", file_name=made.path.name))
    assert result.body["status"] == "RECONCILED"
    rows = await hub.store.query(
        "SELECT recharge_amount FROM agreements WHERE agreement_id=?", (a["agreement_id"],)
    )
    assert rows == [{"recharge_amount": 6600}]
    assert await run_recon(hub.settings, argparse.Namespace(action="status", party=None)) == 0
    assert "RECONCILED" in capsys.readouterr().out


@pytest.mark.parametrize("party", ["bank.CMB", "crm.XJ", "bank.ICBC.x", "crm.../../x"])
async def test_an_operator_cannot_run_a_file_for_a_party_the_hub_does_not_serve(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str], party: str
) -> None:
    made = upload(tmp_path / "elsewhere", "bank.ICBC", today(), Scope.MONTHLY, [])
    args = argparse.Namespace(action="run", party=party, file=made.path)
    assert await run_recon(hub.settings, args) == 2
    assert "not a party of this hub" in capsys.readouterr().err
    assert _folders(Path(hub.settings.files) / "inbound") == set()
    rows = await hub.store.query("SELECT party FROM recon_files WHERE party=?", (party,))
    assert rows == []


def _folders(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()} if path.is_dir() else set()
