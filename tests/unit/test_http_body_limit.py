"""The HTTP side's body limit as a pure ASGI middleware, with a fake app and a fake client: a
declared length over the limit never reaches the app, a chunked body is read no further than it."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from hub.http import BodyLimit

LIMIT = 1024


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/ops/login",
        "headers": headers,
        "query_string": b"",
    }


class _Client:
    """Sends `chunks` of the body one receive at a time and keeps what the app answers."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.pulled = chunks, 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.pulled += 1
        more = self.pulled < len(self.chunks)
        return {"type": "http.request", "body": self.chunks[self.pulled - 1], "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    body = await Request(scope, receive).body()
    await JSONResponse({"length": len(body)})(scope, receive, send)


async def test_a_declared_length_over_the_limit_is_refused_without_calling_the_app() -> None:
    called: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    client = _Client([b"x" * 10])
    await BodyLimit(app, LIMIT)(_scope([(b"content-length", b"20000000")]), client.receive, client.send)
    assert client.status == 413 and not called and client.pulled == 0


async def test_a_chunked_body_is_read_no_further_than_the_limit() -> None:
    client = _Client([b"x" * 512] * 40_000)  # 20 MB, announced by no length
    await BodyLimit(_echo_length, LIMIT)(
        _scope([(b"transfer-encoding", b"chunked")]), client.receive, client.send
    )
    assert client.status == 413
    assert client.pulled == 3  # 512, 1024, then 1536 > 1024: nothing more is asked for


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    client = _Client([b"x" * 512, b"y" * 512])
    await BodyLimit(_echo_length, LIMIT)(_scope([(b"content-length", b"1024")]), client.receive, client.send)
    assert client.status == 200
    assert json.loads(b"".join(m.get("body", b"") for m in client.sent)) == {"length": 1024}
