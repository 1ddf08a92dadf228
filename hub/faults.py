"""Fault injection for the crash tests: kill the hub (SIGKILL) at a named point.

Configured by SIGNHUB_FAULT_CRASH_AT="<point>:<message type>", e.g. "after_commit:sign.confirmed"
(the unit of work committed, nothing published yet) or "after_publish:sign.result" (published,
outbox row not yet marked sent). Armed, it lets any party kill the hub by sending that type, so
it takes a second switch (SIGNHUB_ALLOW_FAULT_INJECTION=true, checked by the settings), and an
armed hub says so: a warning at start, on /readyz and as `signhub_fault_injection_armed`.
Off unless set; the crash tests run the hub as a subprocess.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from hub import metrics

log = logging.getLogger("signhub.faults")


@dataclass(frozen=True, slots=True)
class Faults:
    crash_at: str | None = None

    def maybe_crash(self, point: str, msg_type: str) -> None:
        if self.crash_at is not None and self.crash_at == f"{point}:{msg_type}":
            os.kill(os.getpid(), signal.SIGKILL)


def arm(crash_at: str | None) -> Faults:
    """The faults to inject; an armed point is announced loudly (log, /readyz, /metrics)."""
    metrics.fault_injection_armed(crash_at)
    if crash_at is not None:
        log.warning("FAULT INJECTION ARMED: this hub kills itself at %s; any party can trigger it. "
                    "For crash tests only, never in production", crash_at)  # fmt: skip
    return Faults(crash_at)
