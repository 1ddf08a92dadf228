"""HTTP: an agreement and its timeline across all parties (`GET /api/ops/agreements/{phone or id}`),
for an operator of the console (viewer and up, by bearer token); every lookup is audited, found
or not, so that walking through numbers shows in the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from hub.console import audit
from hub.console.auth import Operator, Role
from hub.console.context import Console
from hub.console.ops_api import role_checker
from hub.services.query import agreement_reports


def agreements_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/api/ops", tags=["operations"])
    viewer = Depends(role_checker(console, Role.VIEWER))

    @router.get("/agreements/{key}")
    async def show(key: str, op: Operator = viewer) -> dict[str, Any]:
        """Every agreement of a phone number (or the one agreement_id), each with its timeline,
        change history, cases and what is still outstanding."""
        reports = await agreement_reports(console.store, key, console.deps.clock())
        found = [r["agreement"]["agreement_id"] for r in reports]
        await audit.record(console.store, console.deps.clock(), op.name, "agreement.view", target=key[:64],
                           after={"found": found})  # fmt: skip
        if not reports:
            raise HTTPException(status_code=404, detail=f"no agreement for {key!r}")
        return {"agreements": reports}

    return router
