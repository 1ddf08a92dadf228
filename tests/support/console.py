"""For the console's tests: a hub whose manual and dead queues nobody consumes (the console must
drain them itself), operators of every role, signing in by the API or by the sign-in form as a
browser does (with its CSRF token), and a duplicate-signing case made through the broker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from hub.bootstrap import Hub, build_hub
from hub.console.auth import Role, create_operator
from hub.messaging.topology import delete_topology
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.hubrun import AMQP_URL, hub_settings, party_queues
from tests.support.probe import Probe, to

PASSWORD = "s3cret-password"
OPERATORS = {"root": Role.ADMIN, "alice": Role.OPERATOR, "olga": Role.OPERATOR, "bob": Role.APPROVER,
             "vera": Role.VIEWER}  # fmt: skip
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@asynccontextmanager
async def console_hub(workdir: Path, **overrides: Any) -> AsyncIterator[tuple[Hub, Probe]]:
    """A started hub with every operator of OPERATORS, and a probe on the party queues only."""
    settings = hub_settings(workdir, **({"ops_group_rate": 50.0} | overrides))
    hub = await build_hub(settings)
    await hub.start()
    now = datetime.now(UTC)
    for name, role in OPERATORS.items():
        await create_operator(hub.store, name, role, PASSWORD, by="test", now=now)
    parties = [q for q in party_queues(settings) if not q.endswith((".manual", ".dead"))]
    probe = await Probe.connect(AMQP_URL, settings.prefix, parties)
    try:
        yield hub, probe
    finally:
        await probe.close()
        await hub.stop()
        await delete_topology(AMQP_URL, hub.hub_names, hub.registry.parties(), len(settings.retry_delays_s))


def base_url(hub: Hub) -> str:
    return f"http://127.0.0.1:{hub.settings.http_port}"


async def bearer(api: httpx.AsyncClient, name: str, password: str = PASSWORD) -> dict[str, str]:
    """The API's credential of `name`: `Authorization: Bearer <token>`."""
    response = await api.post("/api/ops/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def csrf_of(html: str) -> str:
    """The CSRF token of a console page's forms ('' when the page has none)."""
    found = _CSRF.search(html)
    return found.group(1) if found else ""


async def page_sign_in(web: httpx.AsyncClient, name: str) -> str:
    """Signs in through the sign-in form as a browser does (the client keeps the cookies); returns
    the CSRF token of the session's forms."""
    form = await web.get("/ops/login")
    done = await web.post("/ops/login", data={"name": name, "password": PASSWORD, "csrf": csrf_of(form.text)})
    assert done.status_code == 303 and done.headers["location"] == "/ops/cases", done.headers.get("location")
    return csrf_of((await web.get("/ops/cases")).text)


async def queue_depth(hub: Hub, queue: str) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def duplicate_case(hub: Hub, probe: Probe) -> dict[str, Any]:
    """ICBC's agreement ACTIVE, CCB's confirmation of the same number held in a case."""
    phone = fresh_phone()
    requests = {bank: sign_request(phone) for bank in ("ICBC", "CCB")}
    for bank, request in requests.items():
        await probe.publish(f"bank.{bank}", "sign.request", request)
        ask = await probe.expect(f"verify.request for {bank}", lambda r, b=bank: r.type == "verify.request"
                                 and r.body["phone"] == phone and r.body["bank_code"] == b)  # fmt: skip
        await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
        await probe.expect("approval", to(f"bank.{bank}", "sign.response", request_id=request["request_id"]))
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(requests["ICBC"]))
    active = await probe.expect(
        "ACTIVE", to("bank.ICBC", "sign.result", request_id=requests["ICBC"]["request_id"])
    )
    held_mid = await probe.publish("bank.CCB", "sign.confirmed", confirmed(requests["CCB"]))
    await probe.expect("MANUAL_REVIEW", to("bank.CCB", "sign.result", status="MANUAL_REVIEW",
                                           request_id=requests["CCB"]["request_id"]))  # fmt: skip
    case = (await hub.store.query("SELECT case_id FROM cases WHERE phone=?", (phone,)))[0]
    return {"phone": phone, "case_id": case["case_id"], "existing": active.body, "held_mid": held_mid,
            "request_id": requests["CCB"]["request_id"]}  # fmt: skip
