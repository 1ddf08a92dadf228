"""HTTP: an agreement and its timeline across all parties (`GET /agreements/{phone or id}`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from hub.services.query import agreement_reports
from hub.store.unit_of_work import Store


def agreements_router(store: Store, clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["agreements"])

    @router.get("/agreements/{key}")
    async def show(key: str) -> dict[str, Any]:
        """Every agreement of a phone number (or the one agreement_id), each with its timeline,
        change history, cases and what is still outstanding."""
        reports = await agreement_reports(store, key, clock())
        if not reports:
            raise HTTPException(status_code=404, detail=f"no agreement for {key!r}")
        return {"agreements": reports}

    return router
