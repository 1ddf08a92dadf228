"""The console's defences on a running hub (issue 14): the agreements' timelines only for a signed-in
operator, audited; sign-ins throttled per name and per address, refused in the same time for an
unknown name, and audited at a bounded rate; the API by bearer token only; forms with a CSRF token
and an origin check; redirects that stay on the console; security headers; request bodies limited.

Addresses are told apart by `X-Forwarded-For`, which uvicorn takes from a proxy on 127.0.0.1.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from hub.bootstrap import Hub
from hub.console.auth import Role, create_operator
from tests.support.console import (
    PASSWORD,
    base_url,
    bearer,
    console_hub,
    csrf_of,
    duplicate_case,
    page_sign_in,
)
from tests.support.probe import Probe

pytestmark = pytest.mark.broker
PER_NAME, PER_ADDRESS = 3, 8


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    overrides = {"ops_login_failures_per_name": PER_NAME, "ops_login_failures_per_address": PER_ADDRESS}
    async with console_hub(Path(tmp_path_factory.mktemp("ops-security")), **overrides) as pair:
        yield pair


@pytest.fixture
async def web(stack: tuple[Hub, Probe]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own per test: no cookie of another test's sign-in."""
    async with httpx.AsyncClient(base_url=base_url(stack[0]), timeout=30) as client:
        yield client


async def _sign_in(web: httpx.AsyncClient, name: str, password: str, address: str) -> httpx.Response:
    return await web.post("/api/ops/login", json={"name": name, "password": password},
                          headers={"X-Forwarded-For": address})  # fmt: skip


async def _operators(hub: Hub, *names: str) -> None:
    for name in names:
        await create_operator(hub.store, name, Role.VIEWER, PASSWORD, by="test", now=datetime.now(UTC))


async def test_an_agreement_is_shown_only_to_a_signed_in_operator_and_every_lookup_is_audited(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    path = f"/api/ops/agreements/{d['phone']}"
    assert (await web.get(path)).status_code == 401
    assert (await web.get(f"/agreements/{d['phone']}")).status_code == 404  # no open route left
    vera = await bearer(web, "vera")
    cookie = {"Cookie": f"signhub_ops={vera['Authorization'][7:]}"}
    assert (await web.get(path, headers=cookie)).status_code == 401
    shown = await web.get(path, headers=vera)
    assert shown.status_code == 200
    assert "ACTIVE" in [a["agreement"]["status"] for a in shown.json()["agreements"]]
    assert (await web.get("/api/ops/agreements/13000000000", headers=vera)).status_code == 404
    rows = await hub.store.query("SELECT actor, target FROM audit_log WHERE action='agreement.view'")
    assert {("vera", d["phone"]), ("vera", "13000000000")} <= {(r["actor"], r["target"]) for r in rows}


async def test_a_name_that_failed_too_often_is_refused_even_with_the_right_password(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    await _operators(stack[0], "locked")
    for i in range(PER_NAME):
        assert (await _sign_in(web, "locked", "wrong password", f"10.1.0.{i}")).status_code == 401
    right = await _sign_in(web, "locked", PASSWORD, "10.1.0.99")
    assert right.status_code == 429, right.text
    assert int(right.headers["retry-after"]) > 0
    assert (await _sign_in(web, "vera", PASSWORD, "10.1.0.99")).status_code == 200


async def test_an_address_that_failed_too_often_is_refused_whatever_the_name(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    for i in range(PER_ADDRESS):
        assert (await _sign_in(web, f"guess{i}", "wrong password", "10.2.0.1")).status_code == 401
    assert (await _sign_in(web, "bob", PASSWORD, "10.2.0.1")).status_code == 429
    assert (await _sign_in(web, "bob", PASSWORD, "10.2.0.2")).status_code == 200


async def test_an_unknown_name_takes_as_long_to_refuse_as_a_wrong_password(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    names = [f"timing{i}" for i in range(3)]
    await _operators(stack[0], *names)

    async def refused_in(name: str, address: str) -> float:
        start = time.perf_counter()
        response = await _sign_in(web, name, "wrong password", address)
        assert response.status_code == 401, response.text
        return time.perf_counter() - start

    known = [await refused_in(name, f"10.3.0.{i}") for i, name in enumerate(names)]
    unknown = [await refused_in(f"nobody{i}", f"10.3.1.{i}") for i in range(3)]
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (unknown, known)


async def test_failed_sign_ins_reach_the_audit_log_at_a_bounded_rate(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    hub = stack[0]
    count = "SELECT count(*) AS n FROM audit_log WHERE action='operator.sign_in_refused'"
    before = (await hub.store.query(count))[0]["n"]
    for i in range(30):
        assert (await _sign_in(web, f"spray{i}", "wrong password", f"10.4.{i}.1")).status_code == 401
    written = (await hub.store.query(count))[0]["n"] - before
    assert written <= 20, f"{written} audit rows for 30 failures: at most 10 a minute, and this took < 2"


async def test_the_api_takes_a_bearer_token_and_never_the_console_cookie(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    await page_sign_in(web, "alice")
    token = web.cookies["signhub_ops"]  # a browser's session, sent by hand from here on
    web.cookies.clear()
    cookie = {"Cookie": f"signhub_ops={token}"}
    assert (await web.get("/api/ops/me", headers=cookie)).status_code == 401
    plain = {"Content-Type": "text/plain"}  # what a form of another page can send without a preflight
    assert (
        await web.post("/api/ops/dead/D-none/replay", content=b"x", headers=cookie | plain)
    ).status_code == 401
    assert (await web.get("/api/ops/me", headers={"Authorization": f"Bearer {token}"})).json()[
        "name"
    ] == "alice"
    login = await web.post("/api/ops/login", json={"name": "alice", "password": PASSWORD})
    assert "set-cookie" not in login.headers  # the API's sign-in gives a token, not a cookie


async def test_a_console_form_is_refused_without_its_csrf_token_or_from_another_origin(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    csrf = await page_sign_in(web, "alice")
    claim = f"/ops/cases/{d['case_id']}/claim"
    claimed = "SELECT 1 FROM case_claims WHERE case_id=?"
    assert (await web.post(claim, data={})).status_code == 403
    assert (await web.post(claim, data={"csrf": "0" * 64})).status_code == 403
    elsewhere = {"Origin": "http://127.0.0.1:1"}  # another port of the same host: the same site
    assert (await web.post(claim, data={"csrf": csrf}, headers=elsewhere)).status_code == 403
    assert not await hub.store.query(claimed, (d["case_id"],))
    done = await web.post(claim, data={"csrf": csrf}, headers={"Origin": base_url(hub)})
    assert done.status_code == 303 and await hub.store.query(claimed, (d["case_id"],))
    assert (await web.post("/ops/logout", data={})).status_code == 403


async def test_a_sign_in_form_without_its_token_opens_no_session(web: httpx.AsyncClient) -> None:
    done = await web.post("/ops/login", data={"name": "alice", "password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"].startswith("/ops/login?error=")
    assert "signhub_ops" not in web.cookies


async def test_a_refused_action_sends_the_browser_back_within_the_console_whatever_the_referer(
    web: httpx.AsyncClient,
) -> None:
    csrf = await page_sign_in(web, "alice")
    for referer, back in (("http://evil.example/phish?x=1", "/ops/cases?error="),
                          ("http://127.0.0.1:1/ops/dead/D1?msg=x", "/ops/dead/D1?error=")):  # fmt: skip
        refused = await web.post("/ops/cases/C-none/claim", data={"csrf": csrf}, headers={"Referer": referer})
        assert refused.status_code == 303 and refused.headers["location"].startswith(back), refused.headers


async def test_console_answers_forbid_framing_and_scripts_and_are_not_cached(web: httpx.AsyncClient) -> None:
    for path in ("/ops/login", "/api/ops/me", "/contract"):
        headers = (await web.get(path)).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none' covers it
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


async def test_the_session_cookie_is_secure_when_the_console_is_served_over_https(
    web: httpx.AsyncClient,
) -> None:
    form = await web.get("/ops/login")
    sign_in = {"name": "olga", "password": PASSWORD, "csrf": csrf_of(form.text)}
    over_https = await web.post("/ops/login", data=sign_in, headers={"X-Forwarded-Proto": "https"})
    session = [c for c in over_https.headers.get_list("set-cookie") if c.startswith("signhub_ops=")]
    assert session and "secure" in session[0].lower(), over_https.headers
    again = await web.get("/ops/login")
    plain = await web.post("/ops/login", data=sign_in | {"csrf": csrf_of(again.text)})
    session = [c for c in plain.headers.get_list("set-cookie") if c.startswith("signhub_ops=")]
    assert session and "secure" not in session[0].lower()


async def test_a_request_body_over_the_limit_is_refused_before_it_is_read(
    stack: tuple[Hub, Probe], web: httpx.AsyncClient
) -> None:
    too_big = 2 << 20  # the default limit is 1 MiB
    declared = await web.post(
        "/api/ops/login", content=b"x" * too_big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(too_big // 65536):
            yield b"x" * 65536

    chunked = await web.post("/ops/login", content=chunks())
    assert chunked.status_code == 413
    assert (await web.get("/healthz")).status_code == 200
