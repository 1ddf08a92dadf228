"""Prometheus metrics. Counters of the hot path live in the process's default registry and are
bumped by the intake (`observe_batch`, `intake_event`) and the outbox relay (`published`); what
is a level rather than an event (outbox backlog and age, dead and manual counts, queue depths)
is read from the store and the broker when `/metrics` is scraped (`hub.console.health`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from contracts import catalogue

MESSAGES_IN = Counter("signhub_messages_in_total", "messages taken from the hub's queue", ["type", "party"])
MESSAGES_OUT = Counter("signhub_messages_out_total", "messages the relay published", ["type", "party"])
OUTCOMES = Counter("signhub_flow_outcomes_total", "answers sent to parties, by type, status and reason code",
                   ["type", "status", "reason"])  # fmt: skip
INTAKE = Counter("signhub_intake_total", "what the intake did with a delivery", ["outcome", "reason"])
RETRIES = Counter("signhub_retries_total", "transient failures scheduled for a retry")
LATENCY = Histogram("signhub_processing_seconds", "time from delivery to settled, per message type", ["type"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))  # fmt: skip

FAULT_INJECTION = Gauge("signhub_fault_injection_armed",
                        "1 while a fault-injection point that kills the process is armed (crash tests only)",
                        ["point"])  # fmt: skip
# Labels of what parties send are the hub's words, never theirs: a party's string could carry a
# card number, and each made-up type or code would be a new series.
OTHER_TYPE = "other"
UNKNOWN_PARTY = "unknown"
_armed: list[str] = []  # the fault point armed in this process, for /readyz


def type_label(msg_type: str | None) -> str:
    """A type of the inbound catalogue, else "other"."""
    return msg_type if msg_type in catalogue.INBOUND_TYPES else OTHER_TYPE


def _party(routing_key: str) -> str:
    kind, code, *_ = [*routing_key.split("."), "", ""]
    return f"{kind}.{code}" if kind in ("bank", "crm", "boss") else "unknown"


@contextmanager
def observe_batch(labels: list[tuple[str, str]]) -> Iterator[None]:
    """Around `Intake.take_batch`: counts each delivery in by its (type, party) labels (see
    `type_label`; the intake knows the registered parties), and times it from the start of its
    group to the group's settling."""
    started = time.perf_counter()
    for msg_type, party in labels:
        MESSAGES_IN.labels(msg_type, party).inc()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        for msg_type, _ in labels:
            LATENCY.labels(msg_type).observe(elapsed)


def fault_injection_armed(point: str | None) -> None:
    """Shows the armed fault point (None: none any more) on /metrics and /readyz."""
    FAULT_INJECTION.clear()
    _armed[:] = [point] if point else []
    if point:
        FAULT_INJECTION.labels(point).set(1)


def armed_fault_point() -> str | None:
    return _armed[0] if _armed else None


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
        if row.target != "party":  # a manual or dead copy: the type (and body) are a party's
            MESSAGES_OUT.labels(type_label(row.type), row.target).inc()
            continue
        MESSAGES_OUT.labels(row.type, _party(row.routing_key)).inc()
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
