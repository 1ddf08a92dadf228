"""HTTP: the hub's signing entry for flow 1 (thin handlers over `SigningEntry`).

Web halls authenticate with `Authorization: Bearer <key>` (SIGNHUB_WEB_HALL_KEYS), and so do the
banks that notify through the hub (SIGNHUB_BANK_NOTICE_KEYS). A browser that arrives with a bad
link gets a page that says why, in Chinese, as the subscriber reads it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from contracts.web import RedeemRequest, SessionRequest, SigningNotice, WebError
from hub.flows.operator_signing import Refusal
from hub.services.signing_entry import SigningEntry, WebHall

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C")

_STATUS = {"ALREADY_SIGNED": 409, "UNKNOWN_SESSION": 404, "USED": 410, "EXPIRED": 410, "NOTICE_TAKEN": 409,
           "WRONG_BANK": 403, "NOT_VIA_HUB": 403, "TAMPERED": 400, "WRONG_PURPOSE": 400}  # fmt: skip
_PAGE_TEXT = {
    "TAMPERED": "链接无效：签名校验失败，链接可能已被篡改。",
    "WRONG_PURPOSE": "链接无效：这不是签约入口链接。",
    "EXPIRED": "链接已过期，请返回网上营业厅重新办理签约。",
    "USED": "该链接已经使用过，不能重复使用。请返回网上营业厅重新办理签约。",
    "UNKNOWN_SESSION": "找不到对应的签约业务，请返回网上营业厅重新办理。",
}
_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>统一支付网上系统</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto}}.err{{color:#b00020}}</style></head>
<body><h1>统一支付网上系统</h1><p class="err" id="refusal" data-code="{code}">{text}</p>
<p><small>{code}: {detail}</small></p></body></html>"""


def _error(refusal: Refusal, status: int | None = None) -> JSONResponse:
    body = WebError(error=refusal.code, detail=refusal.detail).model_dump()
    return JSONResponse(body, status_code=status or _STATUS.get(refusal.code, 422))


def _unauthorized(detail: str) -> JSONResponse:
    response = _error(Refusal("UNAUTHORIZED", detail), 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="signhub"'
    return response


def _page(refusal: Refusal) -> HTMLResponse:
    text = _PAGE_TEXT.get(refusal.code, "无法继续签约。")
    body = _PAGE.format(code=html.escape(refusal.code), text=text, detail=html.escape(refusal.detail))
    return HTMLResponse(body, status_code=_STATUS.get(refusal.code, 400))


def _bearer(request: Request) -> str | None:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def _keyed(request: Request, find: Callable[[str], C | None], key: str, keys: str) -> C | JSONResponse:
    """Whom the request's bearer key names (a web hall, a bank), or 401."""
    secret = _bearer(request)
    if secret is None:
        return _unauthorized(f"{key} is required: Authorization: Bearer <key>")
    found = find(secret)
    return found if found is not None else _unauthorized(f"the key is not one of this hub's {keys}")


def _hall(entry: SigningEntry, request: Request) -> WebHall | JSONResponse:
    return _keyed(request, entry.config.hall_with_key, "a web hall key", "web hall keys")


def _bank(entry: SigningEntry, request: Request) -> str | JSONResponse:
    return _keyed(request, entry.config.bank_with_key, "a bank's notice key", "bank notice keys")


async def _body(request: Request, model: type[M]) -> M | JSONResponse:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        return _error(Refusal("INVALID_REQUEST", errors), 422)


async def _caller_and_body(caller: C | JSONResponse, request: Request, model: type[M]) -> tuple[C, M] | JSONResponse:
    """The caller its key named and the request's body, or the refusal of either (the key first)."""
    if isinstance(caller, JSONResponse):
        return caller
    body = await _body(request, model)
    return body if isinstance(body, JSONResponse) else (caller, body)


def signing_router(entry: SigningEntry) -> APIRouter:
    router = APIRouter(tags=["operator-channel signing"])

    @router.post("/web/sessions", status_code=201)
    async def open_session(request: Request) -> Response:
        got = await _caller_and_body(_hall(entry, request), request, SessionRequest)
        if isinstance(got, JSONResponse):
            return got
        made = await entry.open(*got)
        return _error(made) if isinstance(made, Refusal) else JSONResponse(made.model_dump(mode="json"), 201)

    @router.get("/web/sessions/{session_id}")
    async def session_status(session_id: str, request: Request) -> Response:
        hall = _hall(entry, request)
        if isinstance(hall, JSONResponse):
            return hall
        status = await entry.status(hall, session_id)
        return _error(status) if isinstance(status, Refusal) else JSONResponse(status.model_dump(mode="json"))

    @router.get("/web/enter")
    async def enter(token: str = "") -> Response:
        target = await entry.enter(token)
        return _page(target) if isinstance(target, Refusal) else RedirectResponse(target, status_code=303)

    @router.post("/web/bank/{bank}/redeem")
    async def redeem(bank: str, request: Request) -> Response:
        req = await _body(request, RedeemRequest)
        if isinstance(req, JSONResponse):
            return req
        got = await entry.redeem(bank, req.token)
        return _error(got) if isinstance(got, Refusal) else JSONResponse(got.model_dump(mode="json"))

    @router.post("/web/bank-notices", status_code=202)
    async def bank_notice(request: Request) -> Response:
        got = await _caller_and_body(_bank(entry, request), request, SigningNotice)
        if isinstance(got, JSONResponse):
            return got
        refused = await entry.take_notice(*got)
        return _error(refused) if refused is not None else JSONResponse({"accepted": True}, 202)

    return router
