"""The hub's HTTP side (FastAPI on uvicorn): health now; the signing entry, the operations console
and the contract page are added by later issues on the same app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from contracts.asyncapi import build_document

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def build_app(health: HealthCheck, prefix: str) -> FastAPI:
    app = FastAPI(title="signhub", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        report = await health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    @app.get("/asyncapi.json")
    async def asyncapi() -> dict[str, Any]:
        return build_document(prefix)

    return app
