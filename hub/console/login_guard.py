"""How often the console lets anyone fail to sign in (pure: every call is given the time).

A name, and an address, may fail `per_name` and `per_address` times within `window`; past that,
sign-ins for the name (or from the address) are refused without looking at the password (so the
right one waits too) until the oldest failure leaves the window. An attempt refused so is not
counted, or hammering a locked name would keep it locked for ever. Failures reach the audit
log at most `audited_per_minute` times a minute; the next row that does says how many were left out.

The counts live in the hub process: several processes behind one balancer each count their own,
so the limits multiply by the number of processes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_KEYS = 10_000  # names and addresses remembered at once; the oldest is forgotten first
_NAME_CHARS = 64  # a longer name is counted by its start: it cannot be an operator's anyway


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_name: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    audited_per_minute: int = 10


class LoginGuard:
    def __init__(self, limits: LoginLimits | None = None, max_keys: int = MAX_KEYS) -> None:
        self.limits = limits or LoginLimits()
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._audit_minute: datetime | None = None
        self._audited = 0
        self._left_out = 0

    def _keys(self, name: str, address: str) -> list[tuple[tuple[str, str], int]]:
        return [(("name", name[:_NAME_CHARS]), self.limits.per_name),
                (("address", address), self.limits.per_address)]  # fmt: skip

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.limits.window:
            times.popleft()
        return times

    def attempt(self, name: str, address: str, now: datetime) -> float:
        """Seconds to wait when `name` may not try now from `address` (and nothing is counted);
        else 0, and the attempt counts as a failure until `succeeded` says otherwise, so that
        attempts made at once cannot all slip in under the limit."""
        wait = 0.0
        for key, limit in self._keys(name, address):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, (times[-limit] + self.limits.window - now).total_seconds())
        if wait <= 0:
            for key, _ in self._keys(name, address):
                self._count(key, now)
        return max(wait, 0.0)

    def succeeded(self, name: str, address: str, attempted_at: datetime) -> None:
        """The right password: the name's failures are cleared, and the address's count loses
        this attempt (only this one: a good account must not reset an address guessing others)."""
        self._failures.pop(("name", name[:_NAME_CHARS]), None)
        times = self._failures.get(("address", address))
        if times and attempted_at in times:
            times.remove(attempted_at)

    def _count(self, key: tuple[str, str], now: datetime) -> None:
        times = self._recent(key, now)
        if key not in self._failures:
            self._make_room(now)
            self._failures[key] = times
        times.append(now)

    def audit_failure(self, now: datetime) -> int | None:
        """Whether this failure is written to the audit log: None when the minute's budget is
        spent, else how many failures were left out since the last one written."""
        minute = now.replace(second=0, microsecond=0)
        if minute != self._audit_minute:
            self._audit_minute, self._audited = minute, 0
        if self._audited >= self.limits.audited_per_minute:
            self._left_out += 1
            return None
        self._audited += 1
        left_out, self._left_out = self._left_out, 0
        return left_out

    def _make_room(self, now: datetime) -> None:
        if len(self._failures) < self._max_keys:
            return
        for key in [k for k in self._failures if not self._recent(k, now)]:
            del self._failures[key]
        while len(self._failures) >= self._max_keys:
            del self._failures[next(iter(self._failures))]
