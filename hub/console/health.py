"""`/metrics` (Prometheus), `/readyz` (every part of the hub works, checked by doing: hub.liveness)
and `/contract` (the AsyncAPI document as a page an integrator can read). `/healthz` and `/asyncapi.json` are in hub.http.

The counters of the hot path are the process's (`hub.metrics`); the levels (outbox backlog and
age, dead and manual counts, queue depths) are read from the store and the broker per scrape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest

from contracts.asyncapi import build_document
from hub.console.context import Console
from hub.console.contract_page import render_contract
from hub.liveness import Watch
from hub.metrics import armed_fault_point


async def queue_depths(console: Console, retries: int) -> dict[str, int | None]:
    """Messages ready in each of the hub's queues (None: the queue could not be asked)."""
    names = [console.hub_names.inbound_queue, console.hub_names.poison_queue, console.deps.names.manual_queue,
             console.deps.names.dead_queue, *(console.hub_names.retry_queue(i) for i in range(1, retries + 1))]  # fmt: skip
    depths: dict[str, int | None] = {}
    channel = await console.connection.channel()
    try:
        for name in names:
            try:
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = queue.declaration_result.message_count
            except Exception:  # a missing queue closes the channel: open another
                depths[name] = None
                channel = await console.connection.channel()
    finally:
        await channel.close()
    return depths


async def _levels(console: Console, retries: int) -> bytes:
    registry = CollectorRegistry()
    now: datetime = console.deps.clock()
    reads = console.store.console()
    backlog, oldest = await reads.outbox_backlog()
    Gauge("signhub_outbox_backlog", "outbox rows not yet published", registry=registry).set(backlog)
    age = (now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
    Gauge("signhub_outbox_oldest_age_seconds", "age of the oldest unpublished row", registry=registry).set(
        age
    )
    for table, metric in (("dead_messages", "signhub_dead_messages"), ("cases", "signhub_manual_cases")):
        gauge = Gauge(metric, f"rows of {table} by state", ["state"], registry=registry)
        for state, n in (await reads.by_state(table)).items():
            gauge.labels(state).set(n)
    depth = Gauge("signhub_queue_depth", "messages ready in the hub's queues", ["queue"], registry=registry)
    for name, count in (await queue_depths(console, retries)).items():
        if count is not None:
            depth.labels(name).set(count)
    return generate_latest(registry)


async def readiness(watch: Watch) -> dict[str, Any]:
    """Every part checked now, by doing (hub.liveness): ready only when each works. `broker` and
    `store` are kept as before: the console can open a channel; the store answers."""
    states = await watch.check_now()
    report: dict[str, Any] = {"broker": states.get("broker") is None, "store": states.get("store") is None}
    report["parts"] = {name: reason or "ok" for name, reason in states.items()}
    report["status"] = "ready" if not any(states.values()) else "not ready"
    if (point := armed_fault_point()) is not None:
        report["fault_injection"] = point  # any party can kill this hub (hub.faults): say so
    return report


def health_router(console: Console, watch: Watch, retries: int) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics")
    async def metrics() -> Response:
        body = generate_latest(REGISTRY) + await _levels(console, retries)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await readiness(watch)
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    @router.get("/contract", response_class=HTMLResponse)
    async def contract() -> HTMLResponse:
        """The wire contract (the hub's AsyncAPI document) as a readable page."""
        return HTMLResponse(render_contract(build_document(console.deps.names.prefix)))

    return router
