"""The operations console in a real browser (headless Debian Chromium through Playwright), on a
running hub and the real broker, with the probe as every party: a duplicate replaced with a second
approver, a dead message fixed and replayed, a viewer who cannot act, and the audit log showing it
all and catching a tampered row. Screenshots go to $SIGNHUB_SCREENSHOTS (docs/screenshots for the
README) or a temporary folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from hub.bootstrap import Hub
from tests.support.browser import chromium
from tests.support.console import PASSWORD, base_url, console_hub, duplicate_case
from tests.support.data import fresh_phone, sign_request
from tests.support.probe import Probe, to

pytestmark = pytest.mark.broker

WAIT_MS = 15_000


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    async with console_hub(Path(tmp_path_factory.mktemp("ops-browser"))) as pair:
        yield pair


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = Path(os.environ.get("SIGNHUB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    target.mkdir(parents=True, exist_ok=True)
    return target


async def _signed_in(browser: Browser, hub: Hub, name: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900},
                                        base_url=base_url(hub))  # fmt: skip
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto("/ops/login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("#signin")
    await expect(page.locator("header .me")).to_contain_text(name)
    return context, page


async def test_a_duplicate_is_replaced_only_after_a_second_approver_in_the_browser(
    browser: Browser, stack: tuple[Hub, Probe], shots: Path
) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    alice_ctx, alice = await _signed_in(browser, hub, "alice")
    await alice.goto("/ops/cases?state=OPEN")
    await alice.screenshot(path=shots / "ops-1-cases.png", full_page=True)
    await alice.click(f"text={d['case_id']}")
    await expect(alice.locator("#incoming")).to_contain_text("******")
    await alice.click("#claim")
    await expect(alice.locator("#claimed")).to_have_text("alice")
    await alice.select_option("#resolution", "REPLACE")
    await alice.fill("#reason", "用户在建行重新签约 customer re-signed at CCB")
    await alice.screenshot(path=shots / "ops-2-case.png", full_page=True)
    await alice.click("#resolve")
    await expect(alice.locator("#flash")).to_contain_text("复核")
    await expect(alice.locator("#approve")).to_have_count(0)  # never one's own proposal
    await alice_ctx.close()
    assert not probe.all(to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"]))

    bob_ctx, bob = await _signed_in(browser, hub, "bob")
    await bob.goto("/ops/approvals")
    await bob.screenshot(path=shots / "ops-3-approvals.png", full_page=True)
    await bob.goto(f"/ops/cases/{d['case_id']}")
    await bob.click("#approve")
    await expect(bob.locator("#flash")).to_contain_text("Approved")
    await expect(bob.locator("h2")).to_contain_text("RESOLVED")
    await bob.screenshot(path=shots / "ops-4-resolved.png", full_page=True)
    await bob_ctx.close()
    old = d["existing"]["agreement_id"]
    await probe.expect("unsign.notice", to("bank.ICBC", "unsign.notice", agreement_id=old,
                                           reason_code="RESOLVED_BY_OPERATOR"))  # fmt: skip
    await probe.expect("unsign.notify", to("crm.GD", "unsign.notify", agreement_id=old,
                                           reason_code="RESOLVED_BY_OPERATOR"))  # fmt: skip
    result = await probe.expect(
        "ACTIVE", to("bank.CCB", "sign.result", status="ACTIVE", request_id=d["request_id"])
    )
    assert result.correlation_id == d["held_mid"]
    await probe.expect("sign.notify", to("crm.GD", "sign.notify", agreement_id=result.body["agreement_id"]))
    assert (
        len(probe.all(to("bank.CCB", "sign.result", request_id=d["request_id"]))) == 2
    )  # MANUAL_REVIEW, ACTIVE


async def test_a_dead_message_is_fixed_and_replayed_after_approval(
    browser: Browser, stack: tuple[Hub, Probe], shots: Path
) -> None:
    hub, probe = stack
    request = sign_request(fresh_phone(), channel="CARRIER_PIGEON")
    mid = await probe.publish("bank.ICBC", "sign.request", request)
    await probe.expect("message.rejected", to("bank.ICBC", "message.rejected", message_id=mid))
    dead_id = (await hub.store.query("SELECT dead_id FROM dead_messages WHERE message_id=?", (mid,)))[0][
        "dead_id"
    ]
    alice_ctx, alice = await _signed_in(browser, hub, "alice")
    await alice.goto("/ops/dead")
    await alice.screenshot(path=shots / "ops-5-dead-letters.png", full_page=True)
    await alice.click(f"text={dead_id}")
    await expect(alice.locator("#body")).not_to_contain_text(request["account_no"])
    await alice.fill("#changes", json.dumps({"channel": "FAX"}))
    await alice.fill("#edit-reason", "银行渠道码填错 wrong channel code")
    await alice.click("#propose-edit")
    await expect(alice.locator("#error")).to_contain_text("channel")  # validated before it is proposed
    await alice.fill("#changes", json.dumps({"channel": "ONLINE"}))
    await alice.fill("#edit-reason", "银行渠道码填错 wrong channel code")
    await alice.screenshot(path=shots / "ops-6-edit.png", full_page=True)
    await alice.click("#propose-edit")
    await expect(alice.locator("#flash")).to_contain_text("复核")
    await alice_ctx.close()

    bob_ctx, bob = await _signed_in(browser, hub, "bob")
    await bob.goto("/ops/approvals")
    await expect(bob.locator("#approvals")).to_contain_text("ONLINE")  # the preview shows the change
    await bob.click(".approve")
    await expect(bob.locator("#flash")).to_contain_text("Approved")
    await bob.goto(f"/ops/dead/{dead_id}")
    await expect(bob.locator("#state")).to_have_text("REPLAYED")
    await bob_ctx.close()
    ask = await probe.expect("verify.request", lambda r: r.type == "verify.request"
                             and r.body["phone"] == request["phone"])  # fmt: skip
    assert ask.routing_key == "crm.GD.verify.request"


async def test_a_viewer_sees_a_case_but_cannot_act(browser: Browser, stack: tuple[Hub, Probe]) -> None:
    hub, probe = stack
    d = await duplicate_case(hub, probe)
    context, vera = await _signed_in(browser, hub, "vera")
    await vera.goto(f"/ops/cases/{d['case_id']}")
    await expect(vera.locator("#existing")).to_contain_text("ACTIVE")
    for button in ("#claim", "#resolve", "#approve"):
        await expect(vera.locator(button)).to_have_count(0)
    refused = await vera.request.post(f"/ops/cases/{d['case_id']}/claim", max_redirects=0)
    assert refused.status == 403
    await vera.goto("/ops/operators")
    await expect(vera.locator("#forbidden")).to_be_visible()
    await context.close()
    assert not await hub.store.query("SELECT 1 FROM case_claims WHERE case_id=?", (d["case_id"],))


async def test_the_audit_log_shows_every_action_and_catches_a_tampered_row(
    browser: Browser, stack: tuple[Hub, Probe], shots: Path
) -> None:
    hub, _ = stack
    context, bob = await _signed_in(browser, hub, "bob")
    await bob.goto("/ops/audit")
    await expect(bob.locator("#verdict")).to_contain_text("intact")
    table = bob.locator("table.audit")
    for action in ("case.claim", "case.REPLACE.proposed", "case.REPLACE.approved", "case.REPLACE",
                   "dead.EDIT_REPLAY.proposed", "dead.EDIT_REPLAY", "operator.sign_in"):  # fmt: skip
        await expect(table).to_contain_text(action)
    await bob.screenshot(path=shots / "ops-7-audit.png", full_page=False)
    with sqlite3.connect(hub.settings.store) as db:  # someone with the database file, behind the hub's back
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET reason='nothing to see' WHERE seq=3")
    await bob.reload()
    await expect(bob.locator("#verdict")).to_contain_text("TAMPERED")
    await expect(bob.locator("main")).to_contain_text("第 3 条")
    await bob.screenshot(path=shots / "ops-8-tampered.png", full_page=False)
    await context.close()
