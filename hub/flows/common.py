"""What every flow step shares: the step result, timing rules, fingerprints and the refusal."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from contracts.common import QueueReason
from hub.agreements import SigningFlow
from hub.outgoing import Outgoing

NewId = Callable[[str], str]  # prefix -> a fresh identifier, e.g. "A" -> "A3f9c..."


class Refused(Exception):
    """The message is refused whole: dead queue, `message.rejected` to its sender, no effect."""

    def __init__(self, reason: QueueReason, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


@dataclass(frozen=True, slots=True)
class Timing:
    crm_timeout: timedelta
    crm_asks: int
    approval_window: timedelta


@dataclass(frozen=True, slots=True)
class Step:
    """A flow step's outcome: the new flow state to save (None: unchanged) and what to send.

    `copy_latest` asks the shell to re-send the latest answer to a previous message of the same
    flow (a repeat with the same content under a new message_id).
    """

    flow: SigningFlow | None = None
    out: list[Outgoing] = field(default_factory=list)
    copy_latest: tuple[str, str] | None = None  # (routing key, correlation id) of the answer


def fingerprint(*parts: object) -> str:
    """A stable digest of a message's content, to tell a faithful repeat from a changed one."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()
