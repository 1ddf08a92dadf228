"""Fault injection for the crash tests: kill the hub (SIGKILL) at a named point.

Configured by SIGNHUB_FAULT_CRASH_AT="<point>:<message type>", e.g. "after_commit:sign.confirmed"
(the unit of work committed, nothing published yet) or "after_publish:sign.result" (published,
outbox row not yet marked sent). Off unless set; the crash tests run the hub as a subprocess.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Faults:
    crash_at: str | None = None

    def maybe_crash(self, point: str, msg_type: str) -> None:
        if self.crash_at is not None and self.crash_at == f"{point}:{msg_type}":
            os.kill(os.getpid(), signal.SIGKILL)
