"""The hub's signing entry for flow 1 over HTTP (httpx against the running hub), and the bank's
`sign.confirmed` / `sign.failed` naming a session on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.bootstrap import Hub
from tests.support.data import CARD, fresh_phone
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, to

KEY = "web-hall-secret-0123456789"
HALL = "http://hall.example"


class Clock:
    """The hub's clock, moved by the test: expiry without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
async def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def web(tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> AsyncIterator[tuple[Hub, Probe]]:
    settings = {"web_hall_keys": {"web": KEY}, "web_hall_urls": {"web": HALL},
                "bank_pages": {"*": "http://bank.example/{bank}/sign?x=1"}}  # fmt: skip
    async with running_hub(Path(tmp_path_factory.mktemp("web")), clock=clock, **settings) as pair:
        yield pair


@pytest.fixture
async def client(web: tuple[Hub, Probe]) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{web[0].settings.http_port}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def session_request(phone: str, **over: Any) -> dict[str, Any]:
    body = {"phone": phone, "province": "GD", "bank": "ICBC", "user_type": "PREPAID", "recharge_threshold": 1000,
            "recharge_amount": 5000, "auto_pay_allowed": False, "return_url": f"{HALL}/result",
            "notify_url": f"{HALL}/notices"}  # fmt: skip
    return body | over


async def _at_bank(client: httpx.AsyncClient, phone: str, bank: str = "ICBC") -> dict[str, Any]:
    made = await client.post("/web/sessions", json=session_request(phone, bank=bank))
    assert made.status_code == 201, made.text
    entered = await client.get(made.json()["entry_url"])
    assert entered.status_code == 303, entered.text
    location = entered.headers["location"]
    assert location.startswith(f"http://bank.example/{bank}/sign?x=1&token=")
    token = httpx.URL(location).params["token"]
    redeemed = await client.post(f"/web/bank/{bank}/redeem", json={"token": token})
    assert redeemed.status_code == 200, redeemed.text
    return redeemed.json()


async def _state_leaves(
    client: httpx.AsyncClient, url: str, state: str, timeout: float = 10.0
) -> dict[str, Any]:
    """The session's status once it left `state`. Polled: sign.failed gets no answer to wait for."""
    async with asyncio.timeout(timeout):
        while (status := (await client.get(url)).json())["state"] == state:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return dict(status)


def _confirmed(session: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = {"session_id": session["session_id"], "bank_agreement_no": f"BA{uuid.uuid4().hex[:10]}",
            "phone": session["phone"], "account_no": CARD, "account_type": "DEBIT", "recharge_threshold": 1000,
            "recharge_amount": 5000, "auto_pay": False, "signed_at": "2026-11-26T10:00:00+08:00"}  # fmt: skip
    return body | over


async def test_a_session_signed_at_the_bank_records_an_operator_web_agreement(
    client: httpx.AsyncClient, web: tuple[Hub, Probe]
) -> None:
    probe = web[1]
    session = await _at_bank(client, fresh_phone())
    assert session["user_type"] == "PREPAID" and session["notice_url"] == f"{HALL}/notices"
    mid = await probe.publish("bank.ICBC", "sign.confirmed", _confirmed(session))
    result = await probe.expect(
        "sign.result", to("bank.ICBC", "sign.result", session_id=session["session_id"])
    )
    assert result.correlation_id == mid and result.body["status"] == "ACTIVE"
    assert "request_id" not in result.body
    notify = await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=session["phone"]))
    assert notify.body["channel"] == "OPERATOR_WEB" and notify.body["account_last4"] == CARD[-4:]
    status = (await client.get(f"/web/sessions/{session['session_id']}")).json()
    assert status["state"] == "ACTIVE" and status["agreement_id"] == result.body["agreement_id"]
    assert status["phone"] == f"{session['phone'][:3]}****{session['phone'][-4:]}"


async def test_a_ccb_session_sends_the_bank_notice_to_the_hub(client: httpx.AsyncClient) -> None:
    session = await _at_bank(client, fresh_phone(), bank="CCB")
    assert session["notice_url"].endswith("/web/bank-notices")


async def test_a_failed_signing_closes_the_session_with_the_bank_reason(
    client: httpx.AsyncClient, web: tuple[Hub, Probe]
) -> None:
    session = await _at_bank(client, fresh_phone())
    await web[1].publish(
        "bank.ICBC", "sign.failed", {"session_id": session["session_id"], "reason": "卡号无效"}
    )
    url = f"/web/sessions/{session['session_id']}"
    status = await _state_leaves(client, url, "AT_BANK")
    assert status["state"] == "FAILED" and status["reason"] == "卡号无效", status


async def test_confirmations_for_unknown_or_mismatched_sessions_are_refused(
    client: httpx.AsyncClient, web: tuple[Hub, Probe]
) -> None:
    probe = web[1]
    session = await _at_bank(client, fresh_phone())
    await probe.publish("bank.ICBC", "sign.confirmed", _confirmed(session, session_id="S-nobody"))
    unknown = await probe.expect("UNKNOWN_REQUEST", to("bank.ICBC", "sign.result", session_id="S-nobody"))
    assert unknown.body["reason_code"] == "UNKNOWN_REQUEST"
    await probe.publish("bank.ICBC", "sign.confirmed", _confirmed(session, recharge_amount=9900))
    other = await probe.expect(
        "REQUEST_MISMATCH", to("bank.ICBC", "sign.result", session_id=session["session_id"])
    )
    assert other.body["reason_code"] == "REQUEST_MISMATCH"
    await probe.publish("bank.CCB", "sign.confirmed", _confirmed(session))
    wrong_bank = await probe.expect(
        "another bank's", to("bank.CCB", "sign.result", session_id=session["session_id"])
    )
    assert wrong_bank.body["reason_code"] == "UNKNOWN_REQUEST"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "required"), ({"Authorization": "Bearer not-a-key-of-ours-at-all"}, "not one of"),
     ({"Authorization": f"Basic {KEY}"}, "required")],
)  # fmt: skip
async def test_the_entry_refuses_a_call_without_a_web_hall_key(
    client: httpx.AsyncClient, headers: dict[str, str], detail: str
) -> None:
    client.headers.pop("Authorization")
    answer = await client.post("/web/sessions", json=session_request(fresh_phone()), headers=headers)
    assert answer.status_code == 401 and answer.json()["error"] == "UNAUTHORIZED"
    assert detail in answer.json()["detail"] and answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("over", "status", "error"),
    [({"phone": "12345"}, 422, "INVALID_REQUEST"), ({"recharge_threshold": None}, 422, "INVALID_REQUEST"),
     ({"bank": "NOBANK"}, 422, "UNKNOWN_BANK"), ({"province": "BJ"}, 422, "PROVINCE_MISMATCH"),
     ({"return_url": "http://evil.example/x"}, 422, "BAD_RETURN_URL")],
)  # fmt: skip
async def test_the_entry_refuses_a_bad_session_request_saying_why(
    client: httpx.AsyncClient, over: dict[str, Any], status: int, error: str
) -> None:
    answer = await client.post("/web/sessions", json=session_request(fresh_phone()) | over)
    assert answer.status_code == status and answer.json()["error"] == error, answer.text


@pytest.mark.parametrize("field", ["return_url", "notify_url"])
@pytest.mark.parametrize("url", [f"{HALL}@evil.example/x", f"{HALL}.evil.example/x", f"{HALL}1/x", f"{HALL}:8090/x",
                                 "https://hall.example/x", "http://evil.example\\@hall.example/x"])  # fmt: skip
async def test_an_address_that_only_starts_like_the_web_halls_is_refused(
    client: httpx.AsyncClient, field: str, url: str
) -> None:
    answer = await client.post("/web/sessions", json=session_request(fresh_phone()) | {field: url})
    assert answer.status_code == 422 and answer.json()["error"] == "BAD_RETURN_URL", answer.text


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/web/sessions", content=b"{not json")
    assert answer.status_code == 422 and answer.json()["error"] == "INVALID_REQUEST"


async def test_a_tampered_or_replayed_link_gets_a_page_that_says_why(client: httpx.AsyncClient) -> None:
    made = (await client.post("/web/sessions", json=session_request(fresh_phone()))).json()
    entry = made["entry_url"]
    tampered = await client.get(entry[:-3] + ("AAA" if not entry.endswith("AAA") else "BBB"))
    assert tampered.status_code == 400 and 'data-code="TAMPERED"' in tampered.text and "篡改" in tampered.text
    assert (await client.get(entry)).status_code == 303
    replayed = await client.get(entry)
    assert replayed.status_code == 410 and 'data-code="USED"' in replayed.text


async def test_a_session_not_completed_in_30_minutes_expires(
    client: httpx.AsyncClient, web: tuple[Hub, Probe], clock: Clock
) -> None:
    made = (await client.post("/web/sessions", json=session_request(fresh_phone()))).json()
    clock.now += timedelta(minutes=31)
    try:
        expired = await client.get(made["entry_url"])
        assert expired.status_code == 410 and 'data-code="EXPIRED"' in expired.text
        assert (await client.get(made["status_url"])).json()["state"] == "EXPIRED"
        assert web[0].sweeper is not None and await web[0].sweeper.sweep() >= 1
        rows = await web[0].store.query(
            "SELECT state FROM signing_sessions WHERE session_id=?", (made["session_id"],)
        )
        assert rows == [{"state": "EXPIRED"}]
    finally:
        clock.now -= timedelta(minutes=31)


async def test_a_number_with_an_active_agreement_gets_no_session(
    client: httpx.AsyncClient, web: tuple[Hub, Probe]
) -> None:
    session = await _at_bank(client, fresh_phone())
    await web[1].publish("bank.ICBC", "sign.confirmed", _confirmed(session))
    await web[1].expect("sign.result", to("bank.ICBC", "sign.result", session_id=session["session_id"]))
    again = await client.post("/web/sessions", json=session_request(session["phone"]))
    assert again.status_code == 409 and again.json()["error"] == "ALREADY_SIGNED"
