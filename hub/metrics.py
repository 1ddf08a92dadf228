"""Prometheus metrics. Counters of the hot path live in the process's default registry and are
bumped by the intake (`observe_batch`, `intake_event`) and the outbox relay (`published`); what
is a level rather than an event (outbox backlog and age, dead and manual counts, queue depths)
is read from the store and the broker when `/metrics` is scraped (`hub.console.health`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

MESSAGES_IN = Counter("signhub_messages_in_total", "messages taken from the hub's queue", ["type", "party"])
MESSAGES_OUT = Counter("signhub_messages_out_total", "messages the relay published", ["type", "party"])
OUTCOMES = Counter("signhub_flow_outcomes_total", "answers sent to parties, by type, status and reason code",
                   ["type", "status", "reason"])  # fmt: skip
INTAKE = Counter("signhub_intake_total", "what the intake did with a delivery", ["outcome", "reason"])
RETRIES = Counter("signhub_retries_total", "transient failures scheduled for a retry")
LATENCY = Histogram("signhub_processing_seconds", "time from delivery to settled, per message type", ["type"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))  # fmt: skip

R = TypeVar("R")
S = TypeVar("S")


def _party(routing_key: str) -> str:
    kind, code, *_ = [*routing_key.split("."), "", ""]
    return f"{kind}.{code}" if kind in ("bank", "crm", "boss") else "unknown"


def observe_batch(take: Callable[[S, list[Any]], Awaitable[R]]) -> Callable[[S, list[Any]], Awaitable[R]]:
    """Wraps `Intake.take_batch`: counts each delivery in by type and sender, and times it from
    the start of its group to the group's settling."""

    @functools.wraps(take)
    async def timed(self: S, batch: list[Any]) -> R:
        started = time.perf_counter()
        types = [str(getattr(d, "msg_type", None) or "none")[:40] for d in batch]
        for d, msg_type in zip(batch, types, strict=True):
            MESSAGES_IN.labels(msg_type, _party(str(getattr(d, "routing_key", "")))).inc()
        try:
            return await take(self, batch)
        finally:
            elapsed = time.perf_counter() - started
            for msg_type in types:
                LATENCY.labels(msg_type).observe(elapsed)

    return timed


def intake_event(key: str) -> None:
    """The intake's own tally ("processed", "repeats", "retried", "refused.<REASON>")."""
    if key == "retried":
        RETRIES.inc()
    outcome, _, reason = key.partition(".")
    INTAKE.labels(outcome, reason).inc()


def published(rows: Sequence[Any], results: Sequence[object]) -> None:
    """Counts the relay's rows that the broker took, and the outcome an answer carries."""
    for row, result in zip(rows, results, strict=True):
        if result is not None:
            continue
        party = _party(row.routing_key) if row.target == "party" else row.target
        MESSAGES_OUT.labels(row.type, party).inc()
        if row.type.endswith((".result", ".response")) or row.type == "message.rejected":
            _outcome(row.type, row.body)


def _outcome(msg_type: str, body: bytes) -> None:
    try:
        data = json.loads(body)
    except ValueError:
        return
    if isinstance(data, dict):
        fallback = "REJECTED" if "reason_code" in data else "OK"
        status = str(data.get("status") or data.get("decision") or fallback)
        OUTCOMES.labels(msg_type, status[:32], str(data.get("reason_code") or "")[:40]).inc()
