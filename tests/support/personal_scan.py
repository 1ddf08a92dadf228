"""Scanning what a hub left behind for personal data where it must not be (the personal-data tests).

What may be where, from CONTRACT.md ("Values", "Manual and dead queues") and the house rules:
- a full card or ID number never leaves a bank's message in clear: not in logs, the store, metrics,
  the manual and dead queues, nor anything sent to CRMs and BOSS;
- a holder name is only fingerprinted: never in logs, metrics, the store, nor anything sent to CRMs
  and BOSS; but a dead-queue copy keeps the body with only card and ID numbers masked (CONTRACT.md),
  and so does its row in the outbox, which stays until housekeeping prunes sent rows;
- a phone number is a key parties exchange and the store looks agreements up by, so it is in
  messages, copies and store columns; logs carry ids, never a phone number; metrics are labelled
  with the hub's words only;
- a column meant to hold ciphertext (`*_enc`, `meta.value`, the flow's encrypted account and ID)
  holds a Fernet token, and one meant to hold a fingerprint (`*_fp`, the flow's fingerprints)
  64 hex digits: nothing else.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.store.unit_of_work import Store

_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_=-]+")  # Fernet: version byte 0x80, urlsafe base64
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass
class Personal:
    """The personal data a test's parties used."""

    numbers: set[str] = field(default_factory=set)  # full card and ID numbers
    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # holder names


def found(text: str, values: Iterable[str]) -> list[str]:
    """The values that occur in `text` (letters in any case), shown by their first characters only."""
    upper = text.upper()
    return sorted((v[:4] if len(v) > 8 else v[:1]) + "…" for v in values if v.upper() in upper)


def hub_log_lines(logs: str) -> str:
    """The JSON log lines not written by a simulated party running in the same process (the demo's)."""
    return "\n".join(line for line in logs.splitlines() if '"logger": "simulators.' not in line)


async def store_tables(store: Store, *, postgres: bool) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the store, on SQLite or PostgreSQL."""
    listing = ("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
               if postgres else "SELECT name FROM sqlite_master WHERE type = 'table'")  # fmt: skip
    names = [row["name"] for row in await store.query(listing)]
    return {name: await store.query(f'SELECT * FROM "{name}"') for name in names}


def without_queue_copies(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The tables without the outbox rows of manual- and dead-queue copies (bodies as the contract
    keeps them: only card and ID numbers masked)."""
    return tables | {"outbox": [r for r in tables.get("outbox", []) if r["target"] not in ("dead", "manual")]}


def as_text(tables: dict[str, list[dict[str, Any]]]) -> str:
    """The rows as text, binary values decoded (an outbox body is bytes)."""
    return json.dumps(tables, ensure_ascii=False, default=_text)


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def not_sealed(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """`table.column` of each value meant as ciphertext or fingerprint that is something else."""
    wrong = set()
    for table, rows in tables.items():
        for row in rows:
            for where, value, shape in _meant_sealed(table, row):
                if value not in (None, "") and not shape.fullmatch(str(value)):
                    wrong.add(where)
    return sorted(wrong)


def _meant_sealed(table: str, row: dict[str, Any]) -> Iterator[tuple[str, Any, re.Pattern[str]]]:
    for column, value in row.items():
        if column.endswith("_enc") or (table, column) == ("meta", "value"):
            yield f"{table}.{column}", value, _TOKEN
        elif column.endswith("_fp"):
            yield f"{table}.{column}", value, _FINGERPRINT
    if table == "flows":  # hub.store.rows keeps a flow's account as [fingerprint, last4, ciphertext, type]
        data = json.loads(row["data"])
        yield "flows.data.account[0]", data["account"][0], _FINGERPRINT
        yield "flows.data.account[2]", data["account"][2], _TOKEN
        yield "flows.data.id_encrypted", data.get("id_encrypted"), _TOKEN
        for key in ("request_fingerprint", "confirm_fingerprint"):
            yield f"flows.data.{key}", data.get(key), _FINGERPRINT


async def metrics(port: int, within_s: float = 10.0) -> str:
    """The hub's /metrics page."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        while True:
            try:
                return (await http.get("/metrics")).text
            except httpx.ConnectError:
                assert time.monotonic() < deadline, f"/metrics did not answer within {within_s} s"
                await asyncio.sleep(0.1)  # nothing announces that the HTTP port is bound
