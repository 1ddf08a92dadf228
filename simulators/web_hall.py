"""The simulated web hall (网上营业厅, DOMAIN.md flow 1 steps 1-5): the operator's website where a
subscriber enters the number, the home CRM says whether it may sign, the subscriber accepts
the agreement and picks a bank, and the browser goes through the hub to the bank's page. Back
from the bank, the result page shows what the hub recorded (its session status endpoint).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from contracts.web import SigningNotice
from simulators import pages
from simulators.names import bank_name
from simulators.seed import SegmentLookup

log = logging.getLogger(__name__)
SITE, COLOUR = "中国移动 网上营业厅", "#0085d0"
_CRM_REFUSALS = {
    "ALREADY_SIGNED": "该号码已办理银行签约，不能重复签约。",
    "NUMBER_INACTIVE": "该号码状态异常（停机或销户），不能办理签约。",
    "BLACKLISTED": "该号码在签约黑名单中，不能办理签约。",
    "EXCLUSIVE_SERVICE": "该号码已办理与签约互斥的业务，不能办理签约。",
    "NOT_SUBSCRIBER": "该号码不是本公司用户，不能办理签约。",
}
_STATES = {
    "ACTIVE": ("ok", "签约成功！自动充值协议已生效，稍后您将收到确认短信。"),
    "MANUAL_REVIEW": ("err", "签约待人工处理：该号码已有签约协议，工作人员将核实处理。"),
    "FAILED": ("err", "签约失败：{reason}"),
    "EXPIRED": ("err", "签约已超时（30 分钟内未完成），请重新办理。"),
}


@dataclass(frozen=True, slots=True)
class HallConfig:
    name: str
    key: str
    base_url: str  # this site's own address, as browsers and the hub reach it
    hub_url: str
    crm_api_url: str
    banks: tuple[str, ...]


@dataclass(slots=True)
class Order:
    phone: str
    province: str
    terms: dict[str, Any]
    session_id: str | None = None


@dataclass(slots=True)
class WebHall:
    config: HallConfig
    segments: SegmentLookup
    orders: dict[str, Order] = field(default_factory=dict)
    notices: list[tuple[SigningNotice, bool]] = field(default_factory=list)  # (notice, signed by the hub)

    async def eligibility(self, province: str, phone: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(
                f"{self.config.crm_api_url}/crm/{province}/eligibility", json={"phone": phone}
            )
        answer.raise_for_status()
        return dict(answer.json())

    async def hub(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.config.key}"}
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.request(method, f"{self.config.hub_url}{path}", json=body, headers=headers)

    def take_notice(self, raw: bytes, signature: str | None) -> SigningNotice:
        expected = "sha256=" + hmac.new(self.config.key.encode(), raw, hashlib.sha256).hexdigest()
        notice = SigningNotice.model_validate_json(raw)
        self.notices.append((notice, signature is not None and hmac.compare_digest(signature, expected)))
        return notice


def _terms_rows(terms: dict[str, Any]) -> str:
    prepaid = terms["user_type"] == "PREPAID"
    pairs = [("用户类型", "预付费" if prepaid else "后付费")]
    if prepaid:
        pairs += [
            ("充值阈值", pages.yuan(terms["recharge_threshold"])),
            ("充值额度", pages.yuan(terms["recharge_amount"])),
        ]
    else:
        pairs.append(("自动缴费", "可开通" if terms["auto_pay_allowed"] else "本省不开放"))
    return pages.rows(pairs)


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}


def web_hall_app(hall: WebHall) -> FastAPI:
    app = FastAPI(title="simulated web hall")

    def phone_page(phone: str = "", error: str = "", status: int = 200) -> Response:
        return pages.page(SITE, COLOUR, "银行签约 · 话费自动充值", pages.fragment("hall_phone", phone=phone, error=error),
                          status=status)  # fmt: skip

    def agreement_page(order_id: str, order: Order, error: str = "") -> Response:
        banks = "".join(f'<option value="{b}">{bank_name(b)}</option>' for b in hall.config.banks)
        content = pages.fragment("hall_agreement", {"terms": _terms_rows(order.terms), "banks": banks},
                                 phone=order.phone, province=order.province, order_id=order_id, error=error)  # fmt: skip
        return pages.page(SITE, COLOUR, "阅读协议并选择银行", content)

    @app.get("/")
    async def home() -> Response:
        return phone_page()

    @app.post("/check")
    async def check(request: Request) -> Response:
        phone = (await _form(request)).get("phone", "").strip()
        if len(phone) != 11 or not phone.isdigit():
            return phone_page(phone, "请输入 11 位手机号码。", 422)
        province = hall.segments.province_of(phone)
        if province is None:
            return phone_page(phone, "无法识别该号码的归属地。", 422)
        answer = await hall.eligibility(province, phone)
        if answer.get("result") != "OK":
            code = answer.get("reason_code", "OTHER")
            text = _CRM_REFUSALS.get(code, "该号码暂不能办理签约。")
            return pages.message(
                SITE, COLOUR, "不能办理签约", text, ok=False, code=code, back="/", back_text="返回"
            )
        order_id = uuid.uuid4().hex
        hall.orders[order_id] = Order(phone, province, answer)
        return agreement_page(order_id, hall.orders[order_id])

    @app.post("/sign/{order_id}")
    async def sign(order_id: str, request: Request) -> Response:
        order, form = hall.orders.get(order_id), await _form(request)
        if order is None:
            return phone_page(error="办理已失效，请重新输入号码。", status=410)
        if form.get("accept") != "yes":
            return agreement_page(order_id, order, "请先阅读并同意《话费代扣代缴协议》。")
        base, terms = hall.config.base_url, order.terms
        body = {"phone": order.phone, "province": order.province, "bank": form.get("bank", ""),
                "user_type": terms["user_type"], "recharge_threshold": terms.get("recharge_threshold"),
                "recharge_amount": terms.get("recharge_amount"), "auto_pay_allowed": terms["auto_pay_allowed"],
                "return_url": f"{base}/result/{order_id}", "notify_url": f"{base}/notices",
                "hall_ref": order_id}  # fmt: skip
        answer = await hall.hub("POST", "/web/sessions", body)
        if answer.status_code != 201:
            refusal = answer.json()
            return pages.message(SITE, COLOUR, "不能办理签约", "统一支付系统拒绝了签约请求。", ok=False,
                                 code=refusal.get("error", ""), detail=refusal.get("detail", ""), status=409)  # fmt: skip
        made = answer.json()
        order.session_id = made["session_id"]
        return RedirectResponse(made["entry_url"], status_code=303)

    @app.get("/result/{order_id}")
    async def result(order_id: str) -> Response:
        order = hall.orders.get(order_id)
        if order is None or order.session_id is None:
            return phone_page(error="找不到该笔办理。", status=404)
        status = (await hall.hub("GET", f"/web/sessions/{order.session_id}")).json()
        kind, text = _STATES.get(status["state"], ("note", "正在确认签约结果，请稍候……"))
        facts = pages.rows([("手机号码", status["phone"]), ("签约银行", bank_name(status["bank"])),
                            ("业务流水号", order.session_id), ("协议编号", status.get("agreement_id") or "-")])  # fmt: skip
        notices = "".join(
            f'<li class="notice" data-relayed="{str(signed).lower()}">{"已签约" if n.result == "SIGNED" else "签约失败"}'
            f"（{'经统一支付系统转发' if signed else '银行直接通知'}）</li>"
            for n, signed in hall.notices if n.session_id == order.session_id
        )  # fmt: skip
        content = pages.fragment("hall_result", {"facts": facts, "notices": notices or "<li>暂无</li>"}, kind=kind,
                                 state=status["state"], message=text.format(reason=status.get("reason") or ""))  # fmt: skip
        waiting = status["state"] not in _STATES
        return pages.page(SITE, COLOUR, "签约结果", content, refresh_s=1 if waiting else 0)

    @app.post("/notices", status_code=204)
    async def notices(request: Request) -> Response:
        notice = hall.take_notice(await request.body(), request.headers.get("x-signhub-signature"))
        log.info("web hall notice for %s: %s", notice.session_id, notice.result)
        return Response(status_code=204)

    return app
