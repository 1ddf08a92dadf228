"""Translation between flow-1 signing sessions and rows of the `signing_sessions` table."""

from __future__ import annotations

import json
from typing import Any

from contracts.common import UserType
from hub.agreements import Terms
from hub.sessions import SessionState, SigningSession
from hub.store.rows import from_ts, ts

_DATA_FIELDS = ("return_url", "notify_url", "hall_ref", "nonce", "reason", "reason_code", "agreement_id",
                "bank_agreement_no", "confirm_message_id", "confirm_fingerprint", "notice")  # fmt: skip


def session_to_row(s: SigningSession) -> dict[str, Any]:
    terms = [s.terms.user_type.value, s.terms.recharge_threshold, s.terms.recharge_amount,
             s.terms.auto_pay_allowed]  # fmt: skip
    data = {name: getattr(s, name) for name in _DATA_FIELDS} | {"terms": terms}
    return {
        "session_id": s.session_id, "hall": s.hall, "bank": s.bank, "phone": s.phone, "province": s.province,
        "state": s.state.value, "expires_at": ts(s.expires_at), "data": json.dumps(data, separators=(",", ":")),
        "created_at": ts(s.created_at),
    }  # fmt: skip


def row_to_session(row: Any) -> SigningSession:
    data = json.loads(row["data"])
    user_type, threshold, amount, auto_pay_allowed = data.pop("terms")
    created, expires = from_ts(row["created_at"]), from_ts(row["expires_at"])
    assert created is not None and expires is not None
    return SigningSession(
        session_id=row["session_id"], hall=row["hall"], phone=row["phone"], province=row["province"],
        bank=row["bank"], terms=Terms(UserType(user_type), threshold, amount, auto_pay_allowed),
        state=SessionState(row["state"]), created_at=created, expires_at=expires, **data,
    )  # fmt: skip
