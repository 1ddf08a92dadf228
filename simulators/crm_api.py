"""The simulated CRMs' small HTTP API for the web hall (DOMAIN.md flow 1 steps 2-3): may this
number sign? The answer follows the same rule as a `verify.request` (`verify_answer`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from simulators.crm import CrmSimulator
from simulators.crm_register import verify_answer


class EligibilityAsk(BaseModel):
    phone: str = Field(pattern=r"^1[3-9][0-9]{9}$")


def crm_api(crms: Mapping[str, CrmSimulator]) -> FastAPI:
    app = FastAPI(title="simulated provincial CRMs")

    @app.post("/crm/{province}/eligibility")
    async def eligibility(province: str, ask: EligibilityAsk) -> JSONResponse:
        crm = crms.get(province)
        if crm is None:
            return JSONResponse({"error": "UNKNOWN_PROVINCE", "detail": f"no CRM {province} here"}, 404)
        agreement = crm.agreement_of(ask.phone)
        answer = verify_answer(
            "WEB", crm.register.get(ask.phone), agreement.agreement_id if agreement else None
        )
        body: dict[str, Any] = answer.model_dump(mode="json", exclude_none=True, exclude={"verify_id"})
        return JSONResponse(body | {"province": province})

    return app
