"""`POST /web/bank-notices`: only a bank that notifies through the hub, with its key, once a session;
the hub passes the notice on to the web hall again and again until the web hall takes it, within
the session's window, each attempt on the session's timeline. A web hall of the test's own
(plain HTTP on a free port) answers as told and checks the hub's signature."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from hub.bootstrap import Hub
from tests.support.data import fresh_phone
from tests.support.hubrun import free_port, running_hub
from tests.support.probe import Probe

HALL_KEY = "web-hall-secret-0123456789"
CCB_KEY = "ccb-notice-key-0123456789"
ICBC_KEY = "icbc-notice-key-0123456789"
WAIT_S = 15.0


class Clock:
    """The hub's clock, moved by the test: the session's window ends without waiting for it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Hall:
    """The web hall's notice endpoint: refuses the next `failures` notices (503), takes the rest."""

    def __init__(self) -> None:
        self.failures = 0
        self.arrived: asyncio.Queue[tuple[dict[str, Any], bool, int]] = asyncio.Queue()  # body, signed, status

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notices")
        async def notices(request: Request) -> Response:
            raw = await request.body()
            expected = "sha256=" + hmac.new(HALL_KEY.encode(), raw, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(request.headers.get("x-signhub-signature", ""), expected)
            status = 503 if self.failures > 0 else 204
            self.failures -= 1
            self.arrived.put_nowait((json.loads(raw), signed, status))
            return Response(status_code=status)

        return app

    async def next(self) -> tuple[dict[str, Any], bool, int]:
        try:
            return await asyncio.wait_for(self.arrived.get(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"no notice reached the web hall within {WAIT_S:g} s") from None


@pytest.fixture(scope="module")
async def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def hall() -> AsyncIterator[tuple[Hall, str]]:
    site, port = Hall(), free_port()
    server = uvicorn.Server(uvicorn.Config(site.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT_S):
        while not server.started:  # noqa: ASYNC110  (uvicorn offers no event for "listening")
            await asyncio.sleep(0.02)
    try:
        yield site, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
async def web(
    tmp_path_factory: pytest.TempPathFactory, clock: Clock, hall: tuple[Hall, str]
) -> AsyncIterator[tuple[Hub, Probe]]:
    settings = {"web_hall_keys": {"web": HALL_KEY}, "web_hall_urls": {"web": hall[1]},
                "bank_pages": {"*": "http://bank.example/{bank}/sign"}, "web_notice_via_hub": ["CCB"],
                "bank_notice_keys": {"CCB": CCB_KEY, "ICBC": ICBC_KEY}}  # fmt: skip
    async with running_hub(Path(tmp_path_factory.mktemp("notices")), clock=clock, **settings) as pair:
        yield pair


@pytest.fixture
async def client(web: tuple[Hub, Probe]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web[0].settings.http_port}") as c:
        yield c


async def _at_bank(client: httpx.AsyncClient, hall_url: str, bank: str = "CCB") -> str:
    """A session whose subscriber is on the bank's page; its id."""
    body = {"phone": fresh_phone(), "province": "GD", "bank": bank, "user_type": "POSTPAID",
            "auto_pay_allowed": True, "return_url": f"{hall_url}/result", "notify_url": f"{hall_url}/notices"}  # fmt: skip
    hall = {"Authorization": f"Bearer {HALL_KEY}"}
    made = await client.post("/web/sessions", json=body, headers=hall)
    assert made.status_code == 201, made.text
    entered = await client.get(made.json()["entry_url"])
    assert entered.status_code == 303, entered.text
    token = httpx.URL(entered.headers["location"]).params["token"]
    redeemed = await client.post(f"/web/bank/{bank}/redeem", json={"token": token})
    assert redeemed.status_code == 200, redeemed.text
    return str(made.json()["session_id"])


def _notice(session_id: str, bank: str = "CCB") -> dict[str, Any]:
    return {"session_id": session_id, "bank": bank, "result": "SIGNED", "bank_agreement_no": "CCB20261126W1"}


def _key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _settled(hub: Hub) -> None:
    """Every notice the hub is passing on was taken by the web hall or given up."""
    assert hub.entry is not None
    await asyncio.wait_for(hub.entry.notices.settled(), WAIT_S)


async def _events(hub: Hub, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await hub.store.query("SELECT event, detail FROM events WHERE flow_key=? AND event LIKE 'notice.%'"
                                 " ORDER BY id", (f"session:{session_id}",))  # fmt: skip
    return [(r["event"], json.loads(r["detail"])) for r in rows]


@pytest.mark.parametrize("headers", [{}, _key("not-a-key-of-any-bank-at-all"), _key(HALL_KEY)])
async def test_a_notice_without_a_banks_key_is_refused_and_never_reaches_the_web_hall(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str], headers: dict[str, str]
) -> None:
    session_id = await _at_bank(client, hall[1])
    answer = await client.post("/web/bank-notices", json=_notice(session_id), headers=headers)
    assert answer.status_code == 401 and answer.json()["error"] == "UNAUTHORIZED", answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    await _settled(web[0])
    assert hall[0].arrived.empty() and await _events(web[0], session_id) == []


async def test_a_bank_that_tells_the_web_hall_itself_cannot_send_its_notice_through_the_hub(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str]
) -> None:
    session_id = await _at_bank(client, hall[1], bank="ICBC")
    answer = await client.post("/web/bank-notices", json=_notice(session_id, "ICBC"), headers=_key(ICBC_KEY))
    assert answer.status_code == 403 and answer.json()["error"] == "NOT_VIA_HUB", answer.text
    assert await _events(web[0], session_id) == []


async def test_a_banks_key_does_not_vouch_for_another_banks_notice(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str]
) -> None:
    session_id = await _at_bank(client, hall[1])
    answer = await client.post("/web/bank-notices", json=_notice(session_id), headers=_key(ICBC_KEY))
    assert answer.status_code == 403 and answer.json()["error"] == "WRONG_BANK", answer.text


async def test_a_sessions_notice_is_taken_once_and_passed_on_once(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str]
) -> None:
    session_id = await _at_bank(client, hall[1])
    first = await client.post("/web/bank-notices", json=_notice(session_id), headers=_key(CCB_KEY))
    assert first.status_code == 202, first.text
    body, signed, status = await hall[0].next()
    assert body["session_id"] == session_id and body["relayed_by"] == "signhub" and signed and status == 204
    again = await client.post("/web/bank-notices", json=_notice(session_id), headers=_key(CCB_KEY))
    assert again.status_code == 409 and again.json()["error"] == "NOTICE_TAKEN", again.text
    await _settled(web[0])
    assert hall[0].arrived.empty(), "the notice reached the web hall twice"


async def test_the_notice_is_passed_on_until_the_web_hall_takes_it_each_attempt_on_the_timeline(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str]
) -> None:
    session_id = await _at_bank(client, hall[1])
    hall[0].failures = 2
    answer = await client.post("/web/bank-notices", json=_notice(session_id), headers=_key(CCB_KEY))
    assert answer.status_code == 202, answer.text  # taken: passing it on is the hub's errand now
    statuses = [(await hall[0].next())[2] for _ in range(3)]
    assert statuses == [503, 503, 204]
    await _settled(web[0])
    assert await _events(web[0], session_id) == [
        ("notice.taken", {"result": "SIGNED"}),
        ("notice.relayed", {"result": "SIGNED", "attempt": 1, "delivered": False}),
        ("notice.relayed", {"result": "SIGNED", "attempt": 2, "delivered": False}),
        ("notice.relayed", {"result": "SIGNED", "attempt": 3, "delivered": True}),
    ]


async def test_passing_the_notice_on_ends_with_the_sessions_window(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], hall: tuple[Hall, str], clock: Clock
) -> None:
    session_id = await _at_bank(client, hall[1])
    hall[0].failures = 1_000
    try:
        answer = await client.post("/web/bank-notices", json=_notice(session_id), headers=_key(CCB_KEY))
        assert answer.status_code == 202, answer.text
        await hall[0].next()
        clock.now += timedelta(minutes=31)  # the session's window (30 minutes) is over
        await _settled(web[0])
    finally:
        clock.now -= timedelta(minutes=31)
        hall[0].failures = 0
    events = await _events(web[0], session_id)
    tries = [e for e in events if e[0] == "notice.relayed"]
    assert tries and not any(d["delivered"] for _, d in tries)
    assert events[-1] == ("notice.undelivered", {"result": "SIGNED", "attempts": len(tries)})
    while not hall[0].arrived.empty():  # attempts made before the window ended, none after
        hall[0].arrived.get_nowait()
