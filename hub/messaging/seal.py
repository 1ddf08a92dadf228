"""The hub's seal on what it says to itself on a message: who really sent a retried or replayed
copy, which attempt it is, and which operator replayed it.

Retries (`<prefix>.hub.retry.N`, dead-lettered back) and replays (published straight to the
hub's queue) reach the same queue as parties' messages, and a party can put any header on its
message, `x-death` included. So a header is believed only under a seal: an HMAC-SHA256, with a
key only the hub holds (made once, kept encrypted in the store), over the original routing key,
the user_id, the message_id, the attempt, the operator who replayed it and the body's SHA-256.
A message without a valid seal is a party's own publish (`hub.consumers.inbound.delivery_from`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from contracts import envelope as env
from hub.protection import DataProtector
from hub.store.unit_of_work import Store

H_ATTEMPT = "x-signhub-attempt"
# The broker checks user_id against the publishing connection, so the original travels in a header.
H_USER_ID = "x-signhub-user-id"
# Every header by which the hub speaks to itself: a party's copies of them are dropped unread.
INTERNAL_HEADERS = (env.H_ROUTING_KEY, H_ATTEMPT, H_USER_ID, env.H_REPLAY, env.H_SEAL)
_META_KEY = "seal_key"


@dataclass(frozen=True, slots=True)
class Vouched:
    """What the hub vouches for on a message it put back on its own queue."""

    routing_key: str  # the party's original one
    user_id: str | None  # the original AMQP user_id (the broker checked it at the first publish)
    message_id: str | None  # the original one: None if the party gave none
    attempt: int = 0
    replay_by: str | None = None  # the operator who replayed it


class Seal:
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"signhub-seal:" + key).digest()

    def headers(self, v: Vouched, body: bytes) -> dict[str, Any]:
        """The internal headers saying `v`, sealed for this body."""
        out: dict[str, Any] = {env.H_ROUTING_KEY: v.routing_key, H_ATTEMPT: v.attempt}
        if v.user_id is not None:
            out[H_USER_ID] = v.user_id
        if v.replay_by is not None:
            out[env.H_REPLAY] = v.replay_by
        out[env.H_SEAL] = self._tag(v, body)
        return out

    def read(self, headers: Mapping[str, Any], message_id: str | None, body: bytes) -> Vouched | None:
        """What the internal headers say, or None unless their seal verifies for this message."""
        tag = headers.get(env.H_SEAL)
        if not isinstance(tag, str):
            return None
        try:
            v = Vouched(_text(headers[env.H_ROUTING_KEY]), _optional(headers.get(H_USER_ID)), message_id or None,
                        _attempt(headers.get(H_ATTEMPT)), _optional(headers.get(env.H_REPLAY)))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None
        # aiormq gives a message published without a message_id a random one: sealed without one.
        for candidate in (v, replace(v, message_id=None)):
            if hmac.compare_digest(tag, self._tag(candidate, body)):
                return candidate
        return None

    def _tag(self, v: Vouched, body: bytes) -> str:
        fields = ["signhub-seal-1", v.routing_key, v.user_id or "", v.message_id or "", v.attempt,
                  v.replay_by or "", hashlib.sha256(body).hexdigest()]  # fmt: skip
        return hmac.new(self._key, json.dumps(fields).encode(), hashlib.sha256).hexdigest()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _attempt(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not an attempt number")
    return value


async def load_seal(store: Store, protector: DataProtector) -> Seal:
    """The hub's seal; its key is made by the first process that asks and kept encrypted in the
    store (re-encrypted with the other meta values when the data key rotates), so every hub
    process and the console (`signhub ops replay`) share it."""
    token = await store.put_meta_if_absent(_META_KEY, protector.encrypt(os.urandom(32)))
    return Seal(protector.decrypt(token))
