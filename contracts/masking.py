"""How personal numbers are masked wherever a copy leaves the hub's encrypted store (CONTRACT.md)."""

from __future__ import annotations

from typing import Any


def mask_card(account_no: str) -> str:
    """First 6 and last 4 digits of a card number kept, the rest starred."""
    if len(account_no) <= 10:
        return "*" * len(account_no)
    return account_no[:6] + "*" * (len(account_no) - 10) + account_no[-4:]


def mask_id(id_no: str) -> str:
    """Only the last 4 characters of an ID number kept."""
    return "*" * max(len(id_no) - 4, 0) + id_no[-4:]


def mask_body(body: Any) -> Any:
    """A copy of a JSON body with every `account_no` and `id_no` masked, at any depth."""
    if isinstance(body, dict):
        out: dict[str, Any] = {}
        for key, value in body.items():
            # A number sent as a JSON number (or anything else) is masked as its text.
            if key == "account_no" and isinstance(value, str | int | float):
                out[key] = mask_card(str(value))
            elif key == "id_no" and isinstance(value, str | int | float):
                out[key] = mask_id(str(value))
            else:
                out[key] = mask_body(value)
        return out
    if isinstance(body, list):
        return [mask_body(item) for item in body]
    return body
