"""Flow 1 in a real browser: headless Chromium (Playwright) through the simulated web hall, the
hub's signing entry and the simulated bank's signing page, with the hub and every simulator
on the real broker. Screenshots go to $SIGNHUB_SCREENSHOTS (docs/screenshots for the README).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, expect

from hub.bootstrap import Hub, build_hub
from hub.messaging.topology import delete_topology
from hub.segments import SegmentTable
from simulators.bank import BankKnobs
from simulators.fleet import Simulators
from simulators.runner import start_simulators
from simulators.seed import Account, World, build_world
from simulators.web_sites import WebSites, addresses, serve_web_sites
from tests.support.browser import chromium
from tests.support.hubrun import AMQP_URL, free_port, hub_settings

pytestmark = pytest.mark.broker

KEY = "browser-test-hall-key-0123456789"
WAIT_MS = 15_000


@dataclass
class Stack:
    hub: Hub
    sims: Simulators
    sites: WebSites
    world: World
    race_phone: str

    @property
    def hall_url(self) -> str:
        assert self.sites.hall is not None
        return self.sites.hall.config.base_url

    def phone(self, index: int) -> str:
        return self.world.signable("GD")[index].phone

    def account(self, bank: str, index: int = 0) -> Account:
        return self.world.usable_accounts(bank)[index]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = Path(tmp_path_factory.mktemp("browser"))
    ports = [free_port() for _ in range(3)]
    settings = hub_settings(
        workdir, web_hall_keys={"web": KEY}, web_hall_urls={"web": f"http://127.0.0.1:{ports[0]}"},
        bank_notice_keys={"CCB": "ccb-notice-key-0123456789"},
        bank_pages={"*": f"http://127.0.0.1:{ports[1]}/bank/{{bank}}/sign"},
        sim_crm_api_url=f"http://127.0.0.1:{ports[2]}",
    )  # fmt: skip
    table = SegmentTable.load(settings.segments, settings.segment_overrides)
    world = build_world(31, settings.banks, settings.provinces, 12, segments=table)
    race_phone = world.signable("GD")[-1].phone
    hub = await build_hub(settings)
    await hub.start()
    try:
        knobs = {"CCB": BankKnobs(hold=frozenset({race_phone}))}
        sims = await start_simulators(AMQP_URL, settings.prefix, world, settings.banks, settings.provinces,
                                      workdir / "sms", bank_knobs=knobs)  # fmt: skip
        sites = await serve_web_sites(sims, addresses(settings, tuple(settings.banks)), table)
        try:
            yield Stack(hub, sims, sites, world, race_phone)
        finally:
            await sites.stop()
            await sims.close()
    finally:
        await hub.stop()
        await delete_topology(AMQP_URL, hub.hub_names, hub.registry.parties(), len(settings.retry_delays_s))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 760})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    await context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = Path(os.environ.get("SIGNHUB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    target.mkdir(parents=True, exist_ok=True)
    return target


async def _to_bank(page: Page, stack: Stack, phone: str, bank: str, shots: Path | None = None) -> None:
    """Web hall: number, CRM check, agreement, bank; ends on the bank's form."""
    p = page
    await p.goto(f"{stack.hall_url}/")
    await p.fill("#phone", phone)
    if shots:
        await p.screenshot(path=shots / "1-web-hall-number.png")
    await p.click("#next")
    await expect(p.locator("#agreement-text")).to_be_visible()
    await p.check("#accept")
    await p.select_option("#bank", bank)
    if shots:
        await p.screenshot(path=shots / "2-web-hall-agreement.png")
    await p.click("#sign")
    await expect(p.locator("#card_no")).to_be_visible()
    assert f"/bank/{bank}/sign" in p.url


async def _fill_card(page: Page, account: Account, *, card_no: str | None = None) -> None:
    await page.fill("#card_no", card_no or account.account_no)
    await page.fill("#holder_name", account.holder_name)
    await page.fill("#id_no", account.id_no)


async def _result(page: Page, state: str) -> None:
    await expect(page.locator("#result")).to_have_attribute("data-state", state, timeout=WAIT_MS)


async def test_a_subscriber_signs_through_web_hall_hub_and_bank_page(
    stack: Stack, page: Page, shots: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    phone, account = stack.phone(0), stack.account("ICBC")
    await _to_bank(page, stack, phone, "ICBC", shots)
    await _fill_card(page, account)
    await page.screenshot(path=shots / "3-bank-signing-page.png")
    await page.click("#confirm")
    await _result(page, "ACTIVE")
    await page.screenshot(path=shots / "4-web-hall-success.png")
    crm_agreement = await stack.sims.crms["GD"].wait_agreement(phone)
    rows = await stack.hub.store.query("SELECT channel, status FROM agreements WHERE phone=?", (phone,))
    assert rows == [{"channel": "OPERATOR_WEB", "status": "ACTIVE"}]
    assert crm_agreement.account_last4 == account.account_no[-4:]
    await stack.sims.crms["GD"].wait_until(lambda: any(phone in line for line in stack.sims.crms["GD"].sms.lines),
                                          f"the SMS to {phone}")  # fmt: skip
    hall = stack.sites.hall
    assert hall is not None and [(n.result, signed) for n, signed in hall.notices if n.bank == "ICBC"] == [
        ("SIGNED", False)
    ]
    stored = b"".join(f.read_bytes() for f in Path(stack.hub.settings.store).parent.glob("hub.db*"))
    for secret in (account.account_no, account.id_no):
        assert secret.encode() not in stored and secret not in caplog.text


async def test_the_bank_refuses_a_bad_card_and_the_web_hall_shows_why(
    stack: Stack, page: Page, shots: Path
) -> None:
    account = stack.account("ICBC", 1)
    wrong = account.account_no[:-1] + str((int(account.account_no[-1]) + 1) % 10)
    await _to_bank(page, stack, stack.phone(1), "ICBC")
    await _fill_card(page, account, card_no=wrong)
    await page.click("#confirm")
    await expect(page.locator("#message")).to_contain_text("银行卡号有误")
    await page.screenshot(path=shots / "5-bank-refuses-card.png")
    await page.click("#back")
    await _result(page, "FAILED")
    await expect(page.locator("#result")).to_contain_text("银行卡号有误")
    await page.screenshot(path=shots / "6-web-hall-failed.png")


async def test_a_number_already_signed_is_refused_at_the_web_hall(
    stack: Stack, page: Page, shots: Path
) -> None:
    phone = stack.phone(2)
    await _to_bank(page, stack, phone, "ICBC")
    await _fill_card(page, stack.account("ICBC", 2))
    await page.click("#confirm")
    await _result(page, "ACTIVE")
    await stack.sims.crms["GD"].wait_agreement(phone)
    await page.goto(f"{stack.hall_url}/")
    await page.fill("#phone", phone)
    await page.click("#next")
    message = page.locator("#message")
    await expect(message).to_have_attribute("data-code", "ALREADY_SIGNED")
    await expect(message).to_contain_text("不能重复签约")
    await page.screenshot(path=shots / "7-web-hall-already-signed.png")


async def test_ccb_tells_the_hub_which_passes_the_notice_to_the_web_hall(stack: Stack, page: Page) -> None:
    await _to_bank(page, stack, stack.phone(3), "CCB")
    await _fill_card(page, stack.account("CCB"))
    await page.click("#confirm")
    await _result(page, "ACTIVE")
    sent = [(url, n.result) for url, n, ok in stack.sites.bank_pages.notices_sent if n.bank == "CCB" and ok]
    assert sent == [(f"{stack.sites.addresses.hub}/web/bank-notices", "SIGNED")]
    hall = stack.sites.hall
    assert hall is not None and stack.hub.entry is not None
    await asyncio.wait_for(stack.hub.entry.notices.settled(), WAIT_MS / 1000)  # passed on in the background
    relayed = [(n.relayed_by, signed) for n, signed in hall.notices if n.bank == "CCB"]
    assert relayed == [("signhub", True)]  # signed with the hall's key by the hub
    await expect(page.locator("#notices")).to_contain_text("经统一支付系统转发")


async def test_a_tampered_or_replayed_link_is_refused_with_a_clear_page(
    stack: Stack, page: Page, shots: Path
) -> None:
    genuine: list[str] = []

    async def tamper(route: Route) -> None:
        # The web hall's redirect to the hub, with the token's last characters changed on the way.
        answer = await route.fetch(max_redirects=0)
        genuine.append(answer.headers["location"])
        tampered = genuine[0][:-2] + ("xx" if not genuine[0].endswith("xx") else "yy")
        await route.fulfill(status=303, headers={"location": tampered})

    await page.route("**/sign/*", tamper)
    await page.goto(f"{stack.hall_url}/")
    await page.fill("#phone", stack.phone(4))
    await page.click("#next")
    await page.check("#accept")
    await page.click("#sign")
    refusal = page.locator("#refusal")
    await expect(refusal).to_have_attribute("data-code", "TAMPERED")
    await expect(refusal).to_contain_text("篡改")
    await page.screenshot(path=shots / "8-hub-refuses-tampered-link.png")
    await page.goto(genuine[0])  # the genuine link still works, once
    await expect(page.locator("#card_no")).to_be_visible()
    bank_page = page.url
    await page.goto(genuine[0])
    await expect(refusal).to_have_attribute("data-code", "USED")
    await page.goto(bank_page)  # the bank's token is single use too
    await expect(page.locator("#message")).to_have_attribute("data-code", "USED")
    await page.screenshot(path=shots / "9-bank-refuses-used-link.png")


async def test_an_operator_channel_confirmation_racing_a_bank_channel_one_leaves_one_active(
    stack: Stack, page: Page, shots: Path
) -> None:
    phone, ccb = stack.race_phone, stack.sims.banks["CCB"]
    request_id = await ccb.start_signing(phone, stack.account("CCB", 1))
    assert (await ccb.wait_response(request_id, 15))["result"] == "APPROVED"  # held: not confirmed yet
    await _to_bank(page, stack, phone, "ICBC")
    await _fill_card(page, stack.account("ICBC", 3))
    await asyncio.gather(page.click("#confirm"), ccb.confirm_for(request_id))
    bank_result = await ccb.wait_result(request_id, 15)
    await expect(page.locator("#result")).not_to_have_attribute("data-state", "AT_BANK", timeout=WAIT_MS)
    web_state = await page.locator("#result").get_attribute("data-state")
    assert sorted([bank_result["status"], web_state]) == ["ACTIVE", "MANUAL_REVIEW"]
    if web_state == "MANUAL_REVIEW":
        await page.screenshot(path=shots / "10-web-hall-manual-review.png")
    rows = await stack.hub.store.query(
        "SELECT status FROM agreements WHERE phone=? ORDER BY status", (phone,)
    )
    assert [r["status"] for r in rows] == ["ACTIVE", "PENDING_REVIEW"]
    cases = await stack.hub.store.query("SELECT state FROM cases WHERE phone=?", (phone,))
    assert cases == [{"state": "OPEN"}]
