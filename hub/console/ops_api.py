"""The operations console as an HTTP API (`/api/ops/...`, described in the hub's OpenAPI document).

Every call names its operator by a session token in `Authorization: Bearer`, and never by the
pages' cookie: a browser attaches a cookie to whatever another page makes it send, a header it
does not. Each call is checked against the role it needs; the action functions check again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from hub.console import approvals, audit, cases, dead_letters
from hub.console.auth import AuthRefused, Operator, Role, create_operator, operator_of, sign_out
from hub.console.context import Console
from hub.console.signing_in import SignInThrottled, attempt_sign_in
from hub.flows.duplicates import Resolution
from hub.services.operations import OperationRefused


class SignIn(BaseModel):
    name: str
    password: str


class NewOperator(BaseModel):
    name: str
    role: Role
    password: str


class Resolve(BaseModel):
    resolution: Resolution
    reason: str = ""


class Reason(BaseModel):
    reason: str = ""


class GroupAction(BaseModel):
    reason: str = Field(description="the dead messages' reason code (the group)")
    sender: str = Field(description="the group's sender ('' for an unknown one)")
    action: str = Field(pattern="^(replay|discard)$")
    why: str = ""


class Edit(BaseModel):
    changes: dict[str, Any]
    reason: str = ""


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _needs_reason(text: str) -> str:
    if not text.strip():
        raise HTTPException(status_code=422, detail="a reason is required")
    return text


T = TypeVar("T")


async def run(action: Awaitable[T]) -> T:
    """Translates the console's refusals to HTTP: 403 role, 404 unknown, 409 refused."""
    try:
        return await action
    except PermissionError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (OperationRefused, AuthRefused) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


def role_checker(console: Console, needed: Role) -> Callable[[Request], Awaitable[Operator]]:
    async def check(request: Request) -> Operator:
        op = await operator_of(console.store, bearer_token(request), now=console.deps.clock())
        if op is None:
            raise HTTPException(status_code=401, detail="sign in first (no session, or it expired)")
        if not op.role.allows(needed):
            raise HTTPException(
                status_code=403, detail=f"{op.name} is {op.role.value}; this needs {needed.value}"
            )
        return op

    return check


def ops_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/api/ops", tags=["operations"])
    viewer, operator = (
        Depends(role_checker(console, Role.VIEWER)),
        Depends(role_checker(console, Role.OPERATOR)),
    )
    approver, admin = (
        Depends(role_checker(console, Role.APPROVER)),
        Depends(role_checker(console, Role.ADMIN)),
    )
    c = console

    @router.post("/login")
    async def login(body: SignIn, request: Request) -> dict[str, Any]:
        """Signs in: the token goes in `Authorization: Bearer` of every other call. 429 after too
        many failures for the name or from the address (see `Retry-After`)."""
        try:
            token = await attempt_sign_in(c, body.name, body.password, client_address(request))
        except SignInThrottled as exc:
            raise HTTPException(status_code=429, detail=str(exc),
                                headers={"Retry-After": str(exc.retry_after_s)}) from None  # fmt: skip
        except AuthRefused as exc:
            raise HTTPException(status_code=401, detail=str(exc)) from None
        return {"token": token, "expires_in_s": int(c.session_ttl.total_seconds())}

    @router.post("/logout")
    async def logout(request: Request, op: Operator = viewer) -> dict[str, str]:
        await sign_out(c.store, bearer_token(request) or "")
        return {"signed_out": op.name}

    @router.get("/me")
    async def me(op: Operator = viewer) -> dict[str, str]:
        return {"name": op.name, "role": op.role.value}

    @router.post("/operators", status_code=201)
    async def add_operator(body: NewOperator, op: Operator = admin) -> dict[str, str]:
        await run(
            create_operator(c.store, body.name, body.role, body.password, by=op.name, now=c.deps.clock())
        )
        await audit.record(c.store, c.deps.clock(), op.name, "operator.create", target=body.name,
                           after={"name": body.name, "role": body.role.value})  # fmt: skip
        return {"name": body.name, "role": body.role.value}

    @router.get("/operators")
    async def list_operators(op: Operator = admin) -> list[dict[str, Any]]:
        return await c.store.console().operators()

    @router.get("/cases")
    async def list_cases(province: str | None = None, bank: str | None = None, min_age_s: float | None = None,
                         state: str | None = None, op: Operator = viewer) -> list[dict[str, Any]]:  # fmt: skip
        """Manual cases, oldest first, filtered by province, bank, age (seconds waited) and state
        (OPEN, PENDING_APPROVAL, RESOLVED, WITHDRAWN)."""
        return await cases.list_cases(c, province=province, bank=bank, min_age_s=min_age_s, state=state)

    @router.get("/cases/{case_id}")
    async def case(case_id: str, op: Operator = viewer) -> dict[str, Any]:
        return await run(cases.case_page(c, case_id))

    @router.post("/cases/{case_id}/claim")
    async def claim(case_id: str, op: Operator = operator) -> dict[str, Any]:
        return await run(cases.claim(c, op, case_id))

    @router.post("/cases/{case_id}/release")
    async def release(case_id: str, op: Operator = operator) -> dict[str, Any]:
        return await run(cases.claim(c, op, case_id, release=True))

    @router.post("/cases/{case_id}/resolve")
    async def resolve(case_id: str, body: Resolve, op: Operator = operator) -> dict[str, Any]:
        """KEEP_EXISTING takes effect now; REPLACE waits for another approver (four-eyes)."""
        result: dict[str, Any] = await run(
            cases.resolve(c, op, case_id, body.resolution, _needs_reason(body.reason))
        )
        return result

    @router.get("/approvals")
    async def list_approvals(op: Operator = viewer) -> list[dict[str, Any]]:
        return await approvals.pending(c)

    @router.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: str, op: Operator = approver) -> dict[str, Any]:
        return await run(approvals.decide(c, op, approval_id, approve=True))

    @router.post("/approvals/{approval_id}/refuse")
    async def refuse(approval_id: str, body: Reason, op: Operator = operator) -> dict[str, Any]:
        """An approver refuses, or the proposer withdraws, a proposal (with a reason)."""
        why = _needs_reason(body.reason)
        return await run(approvals.decide(c, op, approval_id, approve=False, reason=why))

    @router.get("/dead/groups")
    async def dead_groups(state: str = "OPEN", op: Operator = viewer) -> list[dict[str, Any]]:
        return await dead_letters.groups(c, state)

    @router.post("/dead/groups/action")
    async def group_action(body: GroupAction, op: Operator = operator) -> dict[str, Any]:
        """Replays or discards a whole group, at the console's rate limit."""
        why = _needs_reason(body.why) if body.action == "discard" else body.why
        result: dict[str, Any] = await run(
            dead_letters.act_on_group(c, op, body.reason, body.sender, body.action, why)
        )
        return result

    @router.get("/dead")
    async def dead_list(reason: str | None = None, sender: str | None = None, state: str | None = "OPEN",
                        op: Operator = viewer) -> list[dict[str, Any]]:  # fmt: skip
        return await dead_letters.listing(c, reason=reason, sender=sender, state=state or None)

    @router.get("/dead/{dead_id}")
    async def dead_one(dead_id: str, op: Operator = viewer) -> dict[str, Any]:
        return await run(dead_letters.inspect(c, dead_id))

    @router.post("/dead/{dead_id}/replay")
    async def replay(dead_id: str, op: Operator = operator) -> dict[str, Any]:
        return await run(dead_letters.replay_as(c, op, dead_id))

    @router.post("/dead/{dead_id}/discard")
    async def discard(dead_id: str, body: Reason, op: Operator = operator) -> dict[str, Any]:
        return await run(dead_letters.discard(c, op, dead_id, _needs_reason(body.reason)))

    @router.post("/dead/{dead_id}/edit")
    async def edit(dead_id: str, body: Edit, op: Operator = operator) -> dict[str, Any]:
        """Proposes an edited replay: validated now, sent when another operator approves."""
        why = _needs_reason(body.reason)
        return await run(dead_letters.propose_edit(c, op, dead_id, body.changes, why))

    @router.get("/audit")
    async def audit_log(
        limit: int = 200, target: str | None = None, op: Operator = viewer
    ) -> list[dict[str, Any]]:
        return await audit.entries(c.store, limit=limit, target=target)

    @router.get("/audit/verify")
    async def audit_verify(op: Operator = viewer) -> dict[str, Any]:
        verdict = await audit.verify(c.store)
        return {"ok": verdict.ok, "rows": verdict.rows, "first_bad_seq": verdict.first_bad_seq,
                "problem": verdict.problem}  # fmt: skip

    @router.get("/audit/export")
    async def audit_export(format: str = "jsonl", op: Operator = viewer) -> PlainTextResponse:
        rows = await audit.entries(c.store)
        if format == "csv":
            return PlainTextResponse(audit.export_csv(rows), media_type="text/csv")
        return PlainTextResponse(audit.export_jsonl(rows), media_type="application/x-ndjson")

    return router
