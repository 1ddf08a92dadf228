"""Fault injection lets any party kill the hub by sending one message type (issue 14, item 4): it
takes two switches, and an armed hub says so loudly (log, /readyz, /metrics). Without a broker."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY, generate_latest

from hub.console.health import readiness
from hub.faults import arm
from hub.liveness import Watch
from hub.settings import SettingsError, load_settings

POINT = "after_commit:sign.confirmed"


def test_a_crash_point_without_the_second_switch_is_a_settings_error_naming_both_keys() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(fault_crash_at=POINT)

    assert "SIGNHUB_FAULT_CRASH_AT" in str(refused.value) and "SIGNHUB_ALLOW_FAULT_INJECTION" in str(refused.value)


def test_a_crash_point_with_the_second_switch_is_taken() -> None:
    assert load_settings(fault_crash_at=POINT, allow_fault_injection=True).fault_crash_at == POINT


async def test_an_armed_point_is_logged_as_a_warning_and_shown_on_readyz_and_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        with caplog.at_level(logging.WARNING, logger="signhub.faults"):
            faults = arm(POINT)
        report = await readiness(Watch([]))
        metrics = generate_latest(REGISTRY).decode()
    finally:
        arm(None)

    assert faults.crash_at == POINT
    assert any(r.levelno == logging.WARNING and POINT in r.getMessage() for r in caplog.records)
    assert report["fault_injection"] == POINT and report["status"] == "ready"
    assert f'signhub_fault_injection_armed{{point="{POINT}"}} 1.0' in metrics


async def test_a_hub_without_a_crash_point_shows_no_fault_injection() -> None:
    arm(None)

    assert "fault_injection" not in await readiness(Watch([]))
    assert "signhub_fault_injection_armed{" not in generate_latest(REGISTRY).decode()
