"""Signed, expiring tokens that carry a browser from the web hall through the hub to a bank page.

A token is `<payload>.<signature>`, both base64url: the payload names the session, the purpose
(`enter`: the hub's redirect; `bank`: the bank page's redemption), a nonce and the expiry; the
signature is HMAC-SHA256 under the hub's token key. Single use is not the token's business: the
session keeps the nonce of the one outstanding token and moves on when it is used. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Purpose(StrEnum):
    ENTER = "enter"
    BANK = "bank"


class TokenError(ValueError):
    """The token is refused; `code` says why (TAMPERED, EXPIRED, WRONG_PURPOSE)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Claims:
    session_id: str
    purpose: Purpose
    nonce: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, claims: Claims) -> str:
    payload = {"s": claims.session_id, "p": claims.purpose.value, "n": claims.nonce,
               "e": int(claims.expires_at.timestamp())}  # fmt: skip
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def verify(key: bytes, token: str, purpose: Purpose, now: datetime) -> Claims:
    """The token's claims, or TokenError: a bad signature is TAMPERED whatever else is wrong."""
    body, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature.encode("utf-8"), expected.encode()):
        raise TokenError("TAMPERED", "the link's signature does not match: it was altered or is not ours")
    payload = json.loads(_unb64(body))
    claims = Claims(
        payload["s"], Purpose(payload["p"]), payload["n"], datetime.fromtimestamp(payload["e"], UTC)
    )
    if claims.purpose is not purpose:
        raise TokenError("WRONG_PURPOSE", f"the link is a {claims.purpose} token, not a {purpose} token")
    if now >= claims.expires_at:
        raise TokenError("EXPIRED", "the link has expired")
    return claims
