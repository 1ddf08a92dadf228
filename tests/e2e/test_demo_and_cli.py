"""The README's main job, `signhub demo`, and the CLI's other entry points."""

from __future__ import annotations

import json
import uuid

import pytest

from hub.cli import main
from hub.demo import run_demo
from hub.settings import load_settings


async def test_the_demo_drives_every_scenario_through_the_broker_as_expected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(prefix=f"tdemo{uuid.uuid4().hex[:6]}")
    code = await run_demo(settings, flows=8, seed=11)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all outcomes as expected" in out
    assert "over HTTP): ACTIVE" in out and "walk through the operator channel in a browser: http://" in out
    for expected in ("MANUAL_REVIEW:DUPLICATE_AGREEMENT", "REJECTED:CRM_TIMEOUT", "REJECTED:UNKNOWN_SEGMENT",
                     "dead letters: 1 (INVALID_MESSAGE: 1)", "manual queue: 1 open case(s)"):  # fmt: skip
        assert expected in out


def test_signhub_asyncapi_prints_the_document_of_every_catalogue_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["asyncapi"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["asyncapi"].startswith("3.")
    assert any(name.endswith("sign.request") for name in document["components"]["messages"])


def test_a_bad_setting_stops_the_command_naming_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNHUB_CRM_ASKS", "many")
    assert main(["run"]) == 2
    assert "SIGNHUB_CRM_ASKS='many'" in capsys.readouterr().err
