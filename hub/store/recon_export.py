"""The hub's agreements as plain `|` text for a reconciliation, read from SQLite in one snapshot.

Synchronous, for a worker thread: it opens its own read-only connection, so it takes no lock
of the hub's and signings go on while it reads (WAL readers never block the writer). Each line
is the agreement as of the file's cut-off: an agreement changed after it is rolled back to its
last version at the cut-off from `agreement_history`; one created after it is left out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_LINE = ("agreement_id||'|'||bank||'|'||bank_agreement_no||'|'||phone||'|'||province||'|'||status||'|'||version"
         "||'|'||user_type||'|'||ifnull(recharge_threshold,'')||'|'||ifnull(recharge_amount,'')||'|'||auto_pay"
         "||'|'||signed_at||'|'||updated_at")  # fmt: skip
_FILTERS = {"bank": "bank=?", "crm": "province=?"}


def export_agreements(db_path: str, kind: str, code: str, cutoff: str, out: Path) -> int:
    """Writes the agreements of bank `code` (kind "bank") or province `code` ("crm") to `out`."""
    where = _FILTERS[kind]
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    count = 0
    try:
        conn.execute("BEGIN")  # one snapshot for both queries
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="\n") as f:
            cur = conn.execute(
                f"SELECT {_LINE} FROM agreements WHERE {where} AND updated_at<=?", (code, cutoff)
            )
            while rows := cur.fetchmany(100_000):
                f.write("\n".join(r[0] for r in rows))
                f.write("\n")
                count += len(rows)
            for line in _as_of(conn, where, code, cutoff):
                f.write(line)
                count += 1
        conn.execute("COMMIT")
    finally:
        conn.close()
    return count


def _as_of(conn: sqlite3.Connection, where: str, code: str, cutoff: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.agreement_id, a.bank, a.bank_agreement_no, a.phone, a.province, a.signed_at, h.after, h.at"
        " FROM agreements a JOIN agreement_history h ON h.agreement_id=a.agreement_id"
        f" WHERE a.{where} AND a.updated_at>? AND h.at<=? ORDER BY a.agreement_id, h.version, h.id",
        (code, cutoff, cutoff),
    ).fetchall()
    latest = {r[0]: r for r in rows}  # ordered by version: the last one per agreement wins
    lines = []
    for agreement_id, bank, bank_no, phone, province, signed_at, after, at in latest.values():
        t = json.loads(after)
        fields = (agreement_id, bank, bank_no, phone, province, t["status"], t["version"], t["user_type"],
                  _blank(t["recharge_threshold"]), _blank(t["recharge_amount"]), int(bool(t["auto_pay"])),
                  signed_at, at)  # fmt: skip
        lines.append("|".join(str(v) for v in fields) + "\n")
    return lines


def as_of(db_path: str, agreement_ids: Sequence[str], cutoff: str) -> dict[str, tuple[dict[str, Any], str]]:
    """The last version at or before `cutoff` of each agreement (its terms and when it was made);
    an agreement made after the cut-off is not in the answer."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    found: dict[str, tuple[dict[str, Any], str]] = {}
    try:
        for i in range(0, len(agreement_ids), 500):
            chunk = list(agreement_ids[i : i + 500])
            rows = conn.execute(
                "SELECT agreement_id, after, at FROM agreement_history WHERE at<=? AND agreement_id IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY agreement_id, version, id",
                (cutoff, *chunk),
            ).fetchall()
            found.update((r[0], (json.loads(r[1]), r[2])) for r in rows)  # the last version wins
    finally:
        conn.close()
    return found


def _blank(value: object) -> object:
    return "" if value is None else value
