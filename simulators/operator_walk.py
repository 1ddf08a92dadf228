"""One operator-channel signing walked through over HTTP, as a browser would but without one:
web hall (number, agreement, bank) → the hub's entry → the bank's page (card form) → back to
the web hall's result page, until it shows what the hub recorded. Used by `signhub demo`."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import httpx

from simulators.seed import Account

_FINAL = ("ACTIVE", "MANUAL_REVIEW", "FAILED", "EXPIRED")


@dataclass(frozen=True, slots=True)
class WebRun:
    phone: str
    bank: str
    state: str  # the web hall's result: the hub's session state, or where the walk stopped
    expected: str = "ACTIVE"


def _find(pattern: str, text: str, what: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"the page has no {what}")
    return found.group(1)


async def walk_operator_channel(
    hall_url: str, phone: str, bank: str, account: Account, timeout_s: float = 30.0
) -> WebRun:
    async with httpx.AsyncClient(follow_redirects=True, timeout=10.0) as web:
        agreement = await web.post(f"{hall_url}/check", data={"phone": phone})
        order = _find(
            r'action="/sign/([0-9a-f]+)"', agreement.text, "agreement form (was the number refused?)"
        )
        bank_page = await web.post(f"{hall_url}/sign/{order}", data={"accept": "yes", "bank": bank})
        action = _find(r'action="(/bank/[A-Z0-9]+/sign/[0-9a-f]+)"', bank_page.text, "bank signing form")
        form = {"card_no": account.account_no, "holder_name": account.holder_name, "id_no": account.id_no}
        result = await web.post(str(bank_page.url.join(action)), data=form)
        async with asyncio.timeout(timeout_s):
            while (state := _find(r'data-state="([A-Z_]+)"', result.text, "result")) not in _FINAL:
                await asyncio.sleep(0.2)  # the result page refreshes itself the same way
                result = await web.get(str(result.url))
    return WebRun(phone, bank, state)
