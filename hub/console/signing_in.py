"""Signing in to the console, from its API or its sign-in page: the throttle (hub.console.login_guard)
first, then the password, then the audit log (failures within the guard's budget).
"""

from __future__ import annotations

import math
from typing import Any

from hub.console import audit
from hub.console.auth import AuthRefused, sign_in
from hub.console.context import Console


class SignInThrottled(AuthRefused):
    """Too many failed sign-ins for the name or from the address: try again after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = math.ceil(retry_after_s)
        super().__init__(f"too many failed sign-ins; try again in {self.retry_after_s} s")


async def attempt_sign_in(console: Console, name: str, password: str, address: str) -> str:
    """A session token; SignInThrottled without looking at the password when the name or the
    address has failed too often, AuthRefused for a wrong name or password."""
    now, guard = console.deps.clock(), console.login_guard
    wait = guard.attempt(name, address, now)
    if wait > 0:
        await _audit_failure(console, name, {"address": address, "throttled": True})
        raise SignInThrottled(wait)
    try:
        token = await sign_in(console.store, name, password, now=now, ttl=console.session_ttl)
    except AuthRefused:
        await _audit_failure(console, name, {"address": address})
        raise
    guard.succeeded(name, address, now)
    await audit.record(
        console.store, console.deps.clock(), name, "operator.sign_in", after={"address": address}
    )
    return token


async def _audit_failure(console: Console, name: str, after: dict[str, Any]) -> None:
    now = console.deps.clock()
    left_out = console.login_guard.audit_failure(now)
    if left_out is None:
        return  # over the minute's budget: counted, and said by the next row written
    if left_out:
        after |= {"unaudited_failures_before": left_out}
    await audit.record(console.store, now, name[:32], "operator.sign_in_refused", after=after)
