"""The operations console's pages (`/ops/...`): server-rendered HTML, Chinese labels with the
English terms, plain forms that post and redirect. The session is an HttpOnly, SameSite=Strict
cookie (Secure over HTTPS); every form carries the CSRF token of its cookie and is refused without
it or from another origin (hub.console.forms). Every page and action checks the role, and a
viewer sees no action buttons and is refused if posting anyway.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from contracts.masking import mask_body
from hub.console import approvals, audit, cases, dead_letters
from hub.console.auth import AuthRefused, Operator, Role, create_operator, form_token, operator_of, sign_out
from hub.console.context import Console
from hub.console.forms import console_path, form_ok, read_form
from hub.console.ops_api import client_address
from hub.console.signing_in import SignInThrottled, attempt_sign_in
from hub.flows.duplicates import Resolution
from hub.services.operations import OperationRefused

_ENV = Environment(loader=PackageLoader("hub.console", "templates"), autoescape=select_autoescape(["html"]))
Page = Callable[[Request, Operator], Awaitable[Response]]
COOKIE = "signhub_ops"  # the session
FORM_COOKIE = "signhub_ops_form"  # the sign-in form's, before there is a session


def _html(name: str, op: Operator | None, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
    session = request.cookies.get(COOKIE)
    values.setdefault("csrf", form_token(session) if session else "")
    values |= {"op": op, "msg": request.query_params.get("msg"), "error": request.query_params.get("error"),
               "can_act": op is not None and op.role.allows(Role.OPERATOR),
               "can_approve": op is not None and op.role.allows(Role.APPROVER)}  # fmt: skip
    return HTMLResponse(_ENV.get_template(name).render(**values), status_code=status)


def _back(path: str, *, msg: str | None = None, error: str | None = None) -> RedirectResponse:
    query = f"?msg={quote(msg)}" if msg else f"?error={quote(error)}" if error else ""
    return RedirectResponse(path + query, status_code=303)


def _pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def _set_cookie(
    response: Response, request: Request, c: Console, name: str, value: str, max_age: int | None
) -> None:
    secure = request.url.scheme == "https" or (c.public_url or "").startswith("https://")
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure)


_BAD_FORM = (
    "表单令牌无效，请刷新页面 The form's CSRF token is missing or wrong, or the form came from another "
    "site; reload the page"
)


def ops_pages(console: Console) -> APIRouter:
    router = APIRouter(prefix="/ops", include_in_schema=False)
    c = console

    async def signed_in(request: Request) -> Operator | None:
        return await operator_of(c.store, request.cookies.get(COOKIE), now=c.deps.clock())

    def page(needed: Role) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
        """A page or action for `needed` and up: sign-in first, 403 below the role, the console's
        refusals shown on the page they came from."""

        def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
            async def run(request: Request) -> Response:
                op = await signed_in(request)
                if op is None:
                    return _back("/ops/login", error="请先登录 Sign in first (or your session expired)")
                if request.method == "POST" and not form_ok(request, await read_form(request),
                                                            request.cookies.get(COOKIE), c.public_url):  # fmt: skip
                    return _html("forbidden.html", op, request, 403, detail=_BAD_FORM)
                if not op.role.allows(needed):
                    detail = f"{op.name} 的角色是 {op.role.value}；此操作需要 {needed.value}"
                    return _html("forbidden.html", op, request, 403, detail=detail)
                try:
                    return await handler(request, op)
                except PermissionError as exc:
                    return _html("forbidden.html", op, request, 403, detail=str(exc))
                except (OperationRefused, AuthRefused, LookupError, ValueError) as exc:
                    return _back(console_path(request.headers.get("referer"), "/ops/cases"), error=str(exc))

            return run

        return wrap

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        secret = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)
        response = _html("login.html", None, request, csrf=form_token(secret))
        _set_cookie(response, request, c, FORM_COOKIE, secret, None)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        if not form_ok(request, form, request.cookies.get(FORM_COOKIE), c.public_url):
            return _back("/ops/login", error="登录表单已失效，请重试 The sign-in form expired; try again")
        try:
            token = await attempt_sign_in(
                c, form.get("name", ""), form.get("password", ""), client_address(request)
            )
        except SignInThrottled as exc:
            return _back("/ops/login", error=f"登录失败次数过多 {exc}")
        except AuthRefused as exc:
            return _back("/ops/login", error=f"登录失败 {exc}")
        response = _back("/ops/cases")
        _set_cookie(response, request, c, COOKIE, token, int(c.session_ttl.total_seconds()))
        response.delete_cookie(FORM_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = request.cookies.get(COOKIE)
        if not form_ok(request, await read_form(request), session, c.public_url):
            return _html("forbidden.html", None, request, 403, detail=_BAD_FORM)
        await sign_out(c.store, session or "")
        response = _back("/ops/login", msg="已退出 Signed out")
        response.delete_cookie(COOKIE)
        return response

    @router.get("/")
    async def home() -> Response:
        return _back("/ops/cases")

    @page(Role.VIEWER)
    async def case_list(request: Request, op: Operator) -> Response:
        q = request.query_params
        age = float(q["min_age_min"]) * 60 if q.get("min_age_min") else None
        rows = await cases.list_cases(c, province=q.get("province") or None, bank=q.get("bank") or None,
                                      min_age_s=age, state=q.get("state") or None)  # fmt: skip
        return _html("cases.html", op, request, cases=rows, f=dict(q), states=cases.STATES)

    @page(Role.VIEWER)
    async def case_one(request: Request, op: Operator) -> Response:
        p = await cases.case_page(c, request.path_params["case_id"])
        return _html("case.html", op, request, p=p, incoming=_pretty(p["incoming"]))

    @page(Role.OPERATOR)
    async def case_claim(request: Request, op: Operator) -> Response:
        case_id = request.path_params["case_id"]
        release = request.url.path.endswith("/release")
        await cases.claim(c, op, case_id, release=release)
        return _back(f"/ops/cases/{case_id}", msg="已释放 Released" if release else "已认领 Claimed")

    @page(Role.OPERATOR)
    async def case_resolve(request: Request, op: Operator) -> Response:
        case_id, form = request.path_params["case_id"], await read_form(request)
        done = await cases.resolve(
            c, op, case_id, Resolution(form.get("resolution", "")), form.get("reason", "")
        )
        text = (
            "已提交复核 Waiting for a second approver"
            if done["state"] == "PENDING_APPROVAL"
            else "已处理 Resolved"
        )
        return _back(f"/ops/cases/{case_id}", msg=text)

    @page(Role.VIEWER)
    async def approval_list(request: Request, op: Operator) -> Response:
        return _html("approvals.html", op, request, rows=await approvals.pending(c))

    @page(Role.OPERATOR)
    async def approval_decide(request: Request, op: Operator) -> Response:
        approve = request.url.path.endswith("/approve")
        form = await read_form(request)
        done = await approvals.decide(c, op, request.path_params["approval_id"], approve=approve,
                                      reason=form.get("reason", ""))  # fmt: skip
        back = console_path(request.headers.get("referer"), "/ops/approvals")
        return _back(back, msg=f"{'已批准 Approved' if approve else '已驳回 Refused'}: {done['approval_id']}")

    @page(Role.VIEWER)
    async def dead_list(request: Request, op: Operator) -> Response:
        q = request.query_params
        rows = await dead_letters.listing(c, reason=q.get("reason"), sender=q.get("sender"),
                                          state=q.get("state", "OPEN") or None)  # fmt: skip
        return _html("dead.html", op, request, groups=await dead_letters.groups(c), rows=rows, f=dict(q))

    @page(Role.VIEWER)
    async def dead_one(request: Request, op: Operator) -> Response:
        p = await dead_letters.inspect(c, request.path_params["dead_id"])
        body = p["body"] if isinstance(p["body"], dict) else {}
        editable = {k: v for k, v in body.items() if k in p["editable"]}
        return _html("dead_one.html", op, request, p=p, body=_pretty(p["body"]),
                     editable_json=json.dumps(mask_body(editable), ensure_ascii=False, indent=1))  # fmt: skip

    @page(Role.OPERATOR)
    async def dead_action(request: Request, op: Operator) -> Response:
        dead_id, form = request.path_params["dead_id"], await read_form(request)
        action = request.url.path.rsplit("/", 1)[-1]
        if action == "replay":
            await dead_letters.replay_as(c, op, dead_id)
            text = "已重放 Replayed"
        elif action == "discard":
            await dead_letters.discard(c, op, dead_id, form.get("reason", ""))
            text = "已丢弃 Discarded"
        else:
            try:
                changes = json.loads(form.get("changes") or "{}")
            except ValueError as exc:
                raise OperationRefused(f"修改内容不是 JSON: {exc}") from None
            if not isinstance(changes, dict):
                raise OperationRefused("修改内容须为 JSON 对象 a JSON object of fields")
            await dead_letters.propose_edit(c, op, dead_id, changes, form.get("reason", ""))
            text = "已校验并提交复核 Validated; waiting for a second approver"
        return _back(f"/ops/dead/{dead_id}", msg=text)

    @page(Role.OPERATOR)
    async def dead_group(request: Request, op: Operator) -> Response:
        form = await read_form(request)
        done = await dead_letters.act_on_group(c, op, form.get("reason", ""), form.get("sender", ""),
                                               form.get("action", ""), form.get("why", ""))  # fmt: skip
        return _back(
            "/ops/dead",
            msg=f"{done['action']}: {len(done['done'])} 条完成 done, {len(done['failed'])} 失败 failed",
        )

    @page(Role.VIEWER)
    async def audit_page(request: Request, op: Operator) -> Response:
        rows = await audit.entries(c.store)
        return _html("audit.html", op, request, rows=rows[::-1][:500], verdict=audit.verify_rows(rows))

    @page(Role.VIEWER)
    async def audit_export(request: Request, op: Operator) -> Response:
        rows = await audit.entries(c.store)
        if request.query_params.get("format") == "csv":
            return PlainTextResponse(audit.export_csv(rows), media_type="text/csv")
        return PlainTextResponse(audit.export_jsonl(rows), media_type="application/x-ndjson")

    @page(Role.ADMIN)
    async def operator_list(request: Request, op: Operator) -> Response:
        rows = await c.store.console().operators()
        return _html("operators.html", op, request, rows=rows, roles=[r.value for r in Role])

    @page(Role.ADMIN)
    async def operator_add(request: Request, op: Operator) -> Response:
        form = await read_form(request)
        role = Role(form.get("role", "viewer"))
        await create_operator(c.store, form.get("name", ""), role, form.get("password", ""), by=op.name,
                              now=c.deps.clock())  # fmt: skip
        await audit.record(c.store, c.deps.clock(), op.name, "operator.create", target=form.get("name"),
                           after={"name": form.get("name"), "role": role.value})  # fmt: skip
        return _back("/ops/operators", msg="已创建 Created")

    routes: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
        ("GET", "/cases", case_list), ("GET", "/cases/{case_id}", case_one),
        ("POST", "/cases/{case_id}/claim", case_claim), ("POST", "/cases/{case_id}/release", case_claim),
        ("POST", "/cases/{case_id}/resolve", case_resolve), ("GET", "/approvals", approval_list),
        ("POST", "/approvals/{approval_id}/approve", approval_decide),
        ("POST", "/approvals/{approval_id}/refuse", approval_decide),
        ("GET", "/dead", dead_list), ("POST", "/dead/group", dead_group), ("GET", "/dead/{dead_id}", dead_one),
        ("POST", "/dead/{dead_id}/replay", dead_action), ("POST", "/dead/{dead_id}/discard", dead_action),
        ("POST", "/dead/{dead_id}/edit", dead_action), ("GET", "/audit", audit_page),
        ("GET", "/audit/export", audit_export),
        ("GET", "/operators", operator_list), ("POST", "/operators", operator_add),
    ]  # fmt: skip
    for method, path, endpoint in routes:
        router.add_api_route(path, endpoint, methods=[method])
    return router
