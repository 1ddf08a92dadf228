"""The hub's web system for flow 1 (统一支付网上系统): opens sessions for web halls, sends the browser
on to the bank's page with a signed single-use token, lets the bank page redeem it, tells the
web hall where a session stands, and takes the notices of banks that do not tell the web hall
themselves (CCB by default: each with its key, once a session) to pass them on
(`hub.services.notice_relay`). Each call is one unit of work; decisions are in
`hub.flows.operator_signing`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from contracts.web import BankSession, SessionCreated, SessionRequest, SessionStatus, SigningNotice
from hub.flows import operator_signing as flow1
from hub.flows.operator_signing import Refusal
from hub.services.context import Deps
from hub.services.notice_relay import NoticeRelay, Poster
from hub.sessions import SigningSession
from hub.store.unit_of_work import Store
from hub.web_tokens import Claims, Purpose, TokenError, sign, verify
from hub.web_urls import is_address_of

log = logging.getLogger("signhub.web")
SIGNATURE_HEADER = "X-Signhub-Signature"


@dataclass(frozen=True, slots=True)
class WebHall:
    name: str
    key: bytes
    base_url: str | None


@dataclass(frozen=True, slots=True)
class WebConfig:
    halls: tuple[WebHall, ...]
    bank_pages: Mapping[str, str]  # bank code or "*" -> URL, "{bank}" replaced
    via_hub: frozenset[str]  # banks whose notice to the web hall goes through the hub
    window: timedelta
    token_ttl: timedelta
    public_url: str
    bank_keys: Mapping[str, bytes] = field(default_factory=dict)  # bank code -> key of its notices

    def hall_with_key(self, secret: str) -> WebHall | None:
        given = secret.encode()
        # Compare with every key, in constant time each, so timing tells nothing about which.
        found = [h for h in self.halls if hmac.compare_digest(h.key, given)]
        return found[0] if found else None

    def bank_with_key(self, secret: str) -> str | None:
        given = secret.encode()
        found = [bank for bank, key in self.bank_keys.items() if hmac.compare_digest(key, given)]
        return found[0] if found else None

    def page_of(self, bank: str) -> str | None:
        page = self.bank_pages.get(bank) or self.bank_pages.get("*")
        return None if page is None else page.replace("{bank}", bank)


def signature(key: bytes, body: bytes) -> str:
    """The header value a web hall checks on the hub's notices: HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


class SigningEntry:
    def __init__(self, store: Store, deps: Deps, config: WebConfig, token_key: bytes, post: Poster) -> None:
        self._store = store
        self._deps = deps
        self.config = config
        self._key = token_key
        self.notices = NoticeRelay(store, deps.clock, post)

    def _token(self, session: SigningSession, purpose: Purpose) -> str:
        assert session.nonce is not None
        expires = min(self._deps.clock() + self.config.token_ttl, session.expires_at)
        return sign(self._key, Claims(session.session_id, purpose, session.nonce, expires))

    async def open(self, hall: WebHall, req: SessionRequest) -> SessionCreated | Refusal:
        if hall.base_url is None or not is_address_of(req.return_url, hall.base_url):
            return Refusal("BAD_RETURN_URL", "return_url must be an address of the web hall itself")
        if req.notify_url is not None and not is_address_of(req.notify_url, hall.base_url):
            return Refusal("BAD_RETURN_URL", "notify_url must be an address of the web hall itself")
        home = self._deps.segments.province_of(req.phone)
        now = self._deps.clock()
        async with self._store.unit_of_work() as uow:
            active = await uow.active_agreement(req.phone)
            made = flow1.open_session(
                req, hall=hall.name, session_id=self._deps.new_id("S"), nonce=secrets.token_urlsafe(16),
                now=now, window=self.config.window,
                bank_known=req.bank in self._deps.registry.banks and self.config.page_of(req.bank) is not None,
                home=home if home in self._deps.registry.provinces else None, already_active=active is not None,
            )  # fmt: skip
            if isinstance(made, Refusal):
                return made
            await uow.save_session(made, now)
            await uow.add_event(now, "session.opened", flow_key=made.key, party=f"web.{hall.name}",
                                detail={"bank": made.bank, "province": made.province})  # fmt: skip
        log.info("session %s opened by web hall %s for %s at %s", made.session_id, hall.name,
                 _masked(made.phone), made.bank)  # fmt: skip
        base = self.config.public_url
        return SessionCreated(
            session_id=made.session_id, entry_url=f"{base}/web/enter?token={quote(self._token(made, Purpose.ENTER))}",
            status_url=f"{base}/web/sessions/{made.session_id}", expires_at=made.expires_at,
        )  # fmt: skip

    def _verified(self, token: str, purpose: Purpose, now: datetime) -> Claims | Refusal:
        try:
            return verify(self._key, token, purpose, now)
        except TokenError as exc:
            return Refusal(exc.code, str(exc))

    async def enter(self, token: str) -> str | Refusal:
        """The browser arrives from the web hall: the bank page's address with the bank's token."""
        now = self._deps.clock()
        claims = self._verified(token, Purpose.ENTER, now)
        if isinstance(claims, Refusal):
            return claims
        async with self._store.unit_of_work() as uow:
            session = await uow.session(claims.session_id)
            entered = flow1.enter(
                session and flow1.current(session, now), claims, new_nonce=secrets.token_urlsafe(16)
            )
            if isinstance(entered, Refusal):
                return entered
            await uow.save_session(entered, now)
            await uow.add_event(now, "session.entered", flow_key=entered.key)
        page = self.config.page_of(entered.bank)
        assert page is not None  # checked when the session was opened
        return f"{page}{'&' if '?' in page else '?'}token={quote(self._token(entered, Purpose.BANK))}"

    async def redeem(self, bank: str, token: str) -> BankSession | Refusal:
        """The bank page tells whom it is about to sign; the token works once."""
        now = self._deps.clock()
        claims = self._verified(token, Purpose.BANK, now)
        if isinstance(claims, Refusal):
            return claims
        async with self._store.unit_of_work() as uow:
            session = await uow.session(claims.session_id)
            redeemed = flow1.redeem(session and flow1.current(session, now), claims, bank=bank)
            if isinstance(redeemed, Refusal):
                return redeemed
            await uow.save_session(redeemed, now)
            await uow.add_event(now, "session.at_bank", flow_key=redeemed.key, party=f"bank.{bank}")
        notice_url = f"{self.config.public_url}/web/bank-notices" if bank in self.config.via_hub else None
        t = redeemed.terms
        return BankSession(
            session_id=redeemed.session_id, bank=bank, phone=redeemed.phone, user_type=t.user_type,
            recharge_threshold=t.recharge_threshold, recharge_amount=t.recharge_amount,
            auto_pay_allowed=t.auto_pay_allowed, expires_at=redeemed.expires_at, return_url=redeemed.return_url,
            notice_url=notice_url or redeemed.notify_url,
        )  # fmt: skip

    async def status(self, hall: WebHall, session_id: str) -> SessionStatus | Refusal:
        async with self._store.unit_of_work() as uow:
            session = await uow.session(session_id)
        if session is None or session.hall != hall.name:
            return Refusal("UNKNOWN_SESSION", f"web hall {hall.name} has no session {session_id}")
        s = flow1.current(session, self._deps.clock())
        return SessionStatus(
            session_id=s.session_id, state=s.state.value, bank=s.bank, phone=_masked(s.phone),
            expires_at=s.expires_at, reason_code=s.reason_code, reason=s.reason, agreement_id=s.agreement_id,
            hall_ref=s.hall_ref,
        )  # fmt: skip

    async def take_notice(self, bank: str, notice: SigningNotice) -> Refusal | None:
        """The notice of `bank` (its key verified) about its session: taken once, then passed on to
        the web hall in the background until it acknowledges (`NoticeRelay`)."""
        if notice.bank != bank:
            return Refusal("WRONG_BANK", f"the key is bank {bank}'s, the notice names bank {notice.bank}")
        if bank not in self.config.via_hub:
            return Refusal("NOT_VIA_HUB", f"bank {bank} tells the web hall itself, not through this hub")
        now = self._deps.clock()
        async with self._store.unit_of_work() as uow:
            session = await uow.session(notice.session_id)
            taken = flow1.take_notice(session and flow1.current(session, now), bank=bank, result=notice.result.value)
            if isinstance(taken, Refusal):
                return taken
            await uow.save_session(taken, now)
            await uow.add_event(now, "notice.taken", flow_key=taken.key, party=f"bank.{bank}",
                                detail={"result": notice.result.value})  # fmt: skip
        hall = next((h for h in self.config.halls if h.name == taken.hall), None)
        if hall is None or taken.notify_url is None:
            return None  # nowhere to pass it; the web hall asks the status endpoint
        body = notice.model_copy(update={"relayed_by": "signhub"}).model_dump_json(exclude_none=True).encode()
        self.notices.pass_on(taken, taken.notify_url, body, {SIGNATURE_HEADER: signature(hall.key, body)})
        return None


async def post_json(url: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """The hub's `Poster`: one bounded attempt (`NoticeRelay` tries again)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
    except httpx.HTTPError as exc:
        log.warning("notice to %s failed: %r", url, exc)
        return False
    return response.is_success
