"""The hub's own failure classes. Adapters translate driver errors into these, `from` the cause.

How each class is handled is decided in one place, `hub.services.intake`:
invalid input is refused (dead queue, sender told, never retried); a business refusal is an
answer with a reason code (not an error at all); a transient failure is retried with growing
delays and then refused as RETRIES_EXHAUSTED; a conflict opens a manual case.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of the hub's own errors."""


class Transient(HubError):
    """Worth retrying: the same message may succeed later (store busy, broker hiccup)."""


class StoreBusy(Transient):
    """The store could not complete the unit of work now."""


class Conflict(HubError):
    """A uniqueness rule of the store refused a write; `existing_id` names the row that holds it."""

    def __init__(self, rule: str, existing_id: str | None) -> None:
        super().__init__(f"{rule} already held by {existing_id}")
        self.rule = rule
        self.existing_id = existing_id
