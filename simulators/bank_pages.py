"""The simulated banks' signing pages (DOMAIN.md flow 1 steps 4-5), one site for every bank.

The hub sends the browser here with a token; the page redeems it at the hub (once) to learn the
number and the CRM's terms, asks for card number, holder name and ID number, checks them as a
bank would, and then either publishes `sign.failed` or signs: `sign.confirmed` naming the
session, a notice to the web hall (or to the hub, for banks that notify through it, with the
bank's notice key), and the browser back to the web hall. Card and ID numbers stay at the bank.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from contracts.bank import SignConfirmed, SignFailed
from contracts.common import UserType
from contracts.web import BankSession, NoticeResult, SigningNotice
from simulators import pages
from simulators.bank import BankAgreement, BankSimulator
from simulators.bank_checks import account_of, page_refusal
from simulators.names import bank_name
from simulators.timefmt import SHANGHAI, now_local

log = logging.getLogger(__name__)
_COLOUR = "#0b4f9c"
_TOKEN_TEXT = {"TAMPERED": "签约链接无效：链接可能已被篡改。", "EXPIRED": "签约链接已过期。",
               "USED": "该签约链接已经使用过。", "UNKNOWN_SESSION": "找不到对应的签约业务。"}  # fmt: skip


def _terms_text(s: BankSession) -> str:
    if s.user_type is UserType.PREPAID:
        return (
            f"预付费，余额低于 {pages.yuan(s.recharge_threshold)} 时自动充值 {pages.yuan(s.recharge_amount)}"
        )
    return "后付费，按月自动缴费" if s.auto_pay_allowed else "后付费"


class BankPages:
    def __init__(self, banks: Mapping[str, BankSimulator], hub_url: str, keys: Mapping[str, str] | None = None) -> None:
        self.banks = banks
        self.hub_url = hub_url
        self.keys = dict(keys or {})  # bank -> its key for notices to the hub (SIGNHUB_BANK_NOTICE_KEYS)
        self.forms: dict[str, BankSession] = {}
        self.notices_sent: list[tuple[str, SigningNotice, bool]] = []

    async def redeem(self, bank: str, token: str) -> BankSession | tuple[str, str]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(f"{self.hub_url}/web/bank/{bank}/redeem", json={"token": token})
        if answer.status_code != 200:
            refusal = answer.json()
            return refusal.get("error", "REFUSED"), refusal.get("detail", "")
        return BankSession.model_validate_json(answer.content)

    async def notify(self, session: BankSession, notice: SigningNotice) -> None:
        """The bank tells the web hall (or the hub, which passes it on): best effort, logged."""
        if session.notice_url is None:
            return
        headers = {"Content-Type": "application/json"}
        key = self.keys.get(notice.bank)
        if key is not None and session.notice_url == f"{self.hub_url}/web/bank-notices":  # the key is the hub's alone
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(session.notice_url, content=notice.model_dump_json(exclude_none=True),
                                           headers=headers)  # fmt: skip
            delivered = answer.is_success
        except httpx.HTTPError:
            delivered = False
        self.notices_sent.append((session.notice_url, notice, delivered))

    async def fail(self, bank: BankSimulator, session: BankSession, reason: str) -> None:
        await bank.client.publish("sign.failed", SignFailed(session_id=session.session_id, reason=reason))
        notice = SigningNotice(
            session_id=session.session_id, bank=bank.code, result=NoticeResult.FAILED, reason=reason
        )
        await self.notify(session, notice)

    async def sign(self, bank: BankSimulator, session: BankSession, card_no: str, auto_pay: bool) -> None:
        account = account_of(card_no, bank.accounts)
        agreement_no = f"{bank.code}{datetime.now(SHANGHAI):%Y%m%d}W{uuid.uuid4().hex[:11].upper()}"
        prepaid = session.user_type is UserType.PREPAID
        body = SignConfirmed(
            session_id=session.session_id, bank_agreement_no=agreement_no, phone=session.phone,
            account_no=account.account_no, account_type=account.account_type,
            recharge_threshold=session.recharge_threshold if prepaid else None,
            recharge_amount=session.recharge_amount if prepaid else None,
            auto_pay=auto_pay and session.auto_pay_allowed, signed_at=now_local(),
        )  # fmt: skip
        bank.agreements[agreement_no] = BankAgreement(
            bank_agreement_no=agreement_no, phone=session.phone, account=account, request_id=None,
            recharge_threshold=body.recharge_threshold, recharge_amount=body.recharge_amount, auto_pay=body.auto_pay,
            signed_at=body.signed_at.isoformat(),
        )  # fmt: skip
        await bank.client.publish("sign.confirmed", body)
        await bank.recorder.changed()
        notice = SigningNotice(session_id=session.session_id, bank=bank.code, result=NoticeResult.SIGNED,
                               bank_agreement_no=agreement_no)  # fmt: skip
        await self.notify(session, notice)


def bank_pages_app(site: BankPages) -> FastAPI:
    app = FastAPI(title="simulated bank signing pages")

    def msg(bank: str, title: str, text: str, **kw: object) -> Response:
        return pages.message(f"{bank_name(bank)} 网上签约", _COLOUR, title, text, **kw)  # type: ignore[arg-type]

    @app.get("/bank/{code}/sign")
    async def show(code: str, token: str = "") -> Response:
        if code not in site.banks:
            return msg(
                code, "无法签约", f"本站没有 {code} 的签约页面。", ok=False, code="UNKNOWN_BANK", status=404
            )
        got = await site.redeem(code, token)
        if isinstance(got, tuple):
            text = _TOKEN_TEXT.get(got[0], "无法核实签约链接。")
            return msg(code, "签约链接无效", text, ok=False, code=got[0], detail=got[1], status=400)
        form_id = uuid.uuid4().hex
        site.forms[form_id] = got
        auto_pay = ('<label><input type="checkbox" id="auto_pay" name="auto_pay" value="yes" checked> 开通自动缴费</label>'
                    if got.user_type is UserType.POSTPAID and got.auto_pay_allowed else "")  # fmt: skip
        content = pages.fragment("bank_form", {"auto_pay": auto_pay}, phone=got.phone, terms_text=_terms_text(got),
                                 bank=code, form_id=form_id, bank_name=bank_name(code))  # fmt: skip
        return pages.page(f"{bank_name(code)} 网上签约", _COLOUR, "银行卡签约", content)

    @app.post("/bank/{code}/sign/{form_id}")
    async def submit(code: str, form_id: str, request: Request) -> Response:
        session = site.forms.pop(form_id, None)
        if session is None or code not in site.banks:
            return msg(
                code, "无法签约", "该签约表单已提交过或已失效。", ok=False, code="FORM_USED", status=410
            )
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        bank = site.banks[code]
        refusal = page_refusal(form.get("card_no", ""), form.get("holder_name", ""), form.get("id_no", ""),
                               bank.accounts)  # fmt: skip
        if refusal is not None:
            await site.fail(bank, session, refusal)
            return msg(code, "签约失败", refusal, ok=False, code="REFUSED", back=session.return_url,
                       back_text="返回网上营业厅")  # fmt: skip
        await site.sign(bank, session, form["card_no"], form.get("auto_pay") == "yes")
        return RedirectResponse(session.return_url, status_code=303)

    return app
