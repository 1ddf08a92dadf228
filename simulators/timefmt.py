"""Clock helpers: the simulators stamp times in Asia/Shanghai, as the contract's business dates are."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# China keeps no daylight saving time: a fixed offset needs no time zone database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def now_local() -> datetime:
    """Now, in Asia/Shanghai, to the second."""
    return datetime.now(SHANGHAI).replace(microsecond=0)
