"""The hub's HTTP side (FastAPI on uvicorn): health now; the signing entry, the operations console
and the contract page are added by later issues on the same app. Every request body is limited in
size (BodyLimit) before any route reads it, with or without a credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.asyncapi import build_document

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
MAX_BODY = 1 << 20  # bytes: SIGNHUB_HTTP_MAX_BODY's default


class BodyTooLarge(HTTPException):
    """Raised from `receive` past the limit: an HTTPException, so that the app (FastAPI's body
    parsing, a page reading its form) answers 413 itself rather than a 400 or a 500."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


class BodyLimit:
    """A pure ASGI middleware: a request whose Content-Length is over `limit` bytes is answered 413
    without calling the app; a body without one (chunked) is read no further than the limit."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        received, started = 0, False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(send, self.limit)


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"the request body is larger than {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def build_app(health: HealthCheck, prefix: str, max_body: int = MAX_BODY) -> FastAPI:
    app = FastAPI(title="signhub", version="0.1.0")
    app.add_middleware(BodyLimit, limit=max_body)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        report = await health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    @app.get("/asyncapi.json")
    async def asyncapi() -> dict[str, Any]:
        return build_document(prefix)

    return app
