"""Reading an agreement and its timeline out of the store, by phone number or agreement id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub import timeline
from hub.store.unit_of_work import Store


async def agreement_reports(store: Store, key: str, now: datetime) -> list[dict[str, Any]]:
    """Every agreement `key` names (an agreement_id, or all of a phone number's, newest first)."""
    rows = await store.reports().agreements_named(key)
    return [await _report(store, row, now) for row in rows]


async def _report(store: Store, agreement: dict[str, Any], now: datetime) -> dict[str, Any]:
    reports = store.reports()
    events = await reports.events_of(agreement["agreement_id"], agreement["flow_key"])
    history = await reports.history_of(agreement["agreement_id"])
    cases = await reports.cases_of(agreement["agreement_id"])
    return timeline.build(agreement, events, history, cases, now)
