"""A message that breaks the intake's classification or copying is refused at once, never retried
(issue 14, item 7): a retry would break it again, and once out of retries it looped in the poison
queue for ever. The intake on a real SQLite store, with a retry scheduler and relay that only
record what they are asked."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from contracts.routing import Party
from contracts.topology import Names
from hub.faults import Faults
from hub.flows.common import Timing
from hub.messaging.edge import Delivery
from hub.parties import Registry
from hub.protection import DataProtector
from hub.segments import SegmentTable
from hub.services.context import Deps
from hub.services.intake import Action, Intake
from hub.store.sqlite import SqliteStore
from tests.support.data import CARD

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
_ids = itertools.count(1)


class ExplodingRegistry(Registry):
    """A registry that fails on one bank's code: classification raises something unexpected."""

    def knows(self, party: Party) -> bool:
        if party.code == "BOOM":
            raise RuntimeError("the registry broke")
        return super().knows(party)


class RecordingRetry:
    def __init__(self) -> None:
        self.scheduled: list[Delivery] = []

    def can_retry(self, d: Delivery) -> bool:
        return True

    async def schedule(self, d: Delivery) -> None:
        self.scheduled.append(d)


class QuietRelay:
    def wake(self) -> None: ...
    def hand_over(self, rows: Any) -> None: ...


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[tuple[Intake, RecordingRetry, SqliteStore]]:
    store = await SqliteStore.open(tmp_path / "hub.db")
    registry = ExplodingRegistry(frozenset({"ICBC", "BOOM"}), frozenset({"GD"}))
    deps = Deps(Names("tin"), registry, SegmentTable.from_rows({"138": "GD"}), DataProtector([Fernet.generate_key()]),
                Timing(timedelta(seconds=1), 1, timedelta(hours=1)), lambda p: f"{p}{next(_ids)}", lambda: NOW)  # fmt: skip
    retry = RecordingRetry()
    try:
        yield Intake(store, deps, retry, QuietRelay(), Faults()), retry, store  # type: ignore[arg-type]
    finally:
        await store.close()


def _delivery(routing_key: str, body: bytes) -> Delivery:
    return Delivery(routing_key, body, "m-1", routing_key.split(".", 2)[2], "application/json",
                    headers={"x-schema-version": 1})  # fmt: skip


async def _dead_and_told(store: SqliteStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dead = await store.query("SELECT reason, error FROM dead_messages")
    outbox = await store.query("SELECT routing_key, type, body FROM outbox ORDER BY id")
    return dead, outbox


async def test_a_body_nested_ten_thousand_levels_deep_is_refused_with_a_dead_copy_and_never_retried(
    intake: tuple[Intake, RecordingRetry, SqliteStore],
) -> None:
    hub, retry, store = intake
    body = b'{"request_id": ' + b"[" * 10_000 + b"]" * 10_000 + b', "account_no": "' + CARD.encode() + b'"}'

    assert await hub.take(_delivery("bank.ICBC.sign.request", body)) is Action.ACK

    dead, outbox = await _dead_and_told(store)
    assert retry.scheduled == []
    assert [d["reason"] for d in dead] == ["INVALID_MESSAGE"]
    assert [(o["routing_key"], o["type"]) for o in outbox] == [("tin.dead", "sign.request"),
                                                                ("bank.ICBC.message.rejected", "message.rejected")]
    assert CARD not in outbox[0]["body"].decode()


async def test_a_classification_that_raises_is_a_refusal_not_a_retry(
    intake: tuple[Intake, RecordingRetry, SqliteStore],
) -> None:
    hub, retry, store = intake

    assert await hub.take(_delivery("bank.BOOM.sign.request", b"{}")) is Action.ACK

    dead, outbox = await _dead_and_told(store)
    assert retry.scheduled == []
    assert dead == [{"reason": "INVALID_MESSAGE", "error": "the message could not be read (RuntimeError)"}]
    assert [o["type"] for o in outbox] == ["sign.request"], "a sender the registry cannot vouch for is not told"
    assert json.loads(outbox[0]["body"]) == {}
