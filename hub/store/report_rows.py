"""What the hub reports from its store outside a unit of work: an agreement with its timeline's
sources (events, change history, cases), and the tallies the demo prints. Written once for both
dialects against the store's `query`."""

from __future__ import annotations

from typing import Any

from hub.store.dbapi import Query


class ReportReads:
    def __init__(self, query: Query) -> None:
        self._query = query

    async def agreements_named(self, key: str) -> list[dict[str, Any]]:
        """The agreement whose id is `key`, or every agreement of the number `key`, newest first."""
        return await self._query(
            "SELECT * FROM agreements WHERE agreement_id=? OR phone=? ORDER BY updated_at DESC", (key, key)
        )

    async def events_of(self, agreement_id: str, flow_key: str | None) -> list[dict[str, Any]]:
        """The agreement's events and those of the flow that made it, in order."""
        return await self._query(
            "SELECT * FROM events WHERE agreement_id=? OR (flow_key IS NOT NULL AND flow_key=?) ORDER BY id",
            (agreement_id, flow_key),
        )

    async def history_of(self, agreement_id: str) -> list[dict[str, Any]]:
        return await self._query(
            "SELECT * FROM agreement_history WHERE agreement_id=? ORDER BY version, id", (agreement_id,)
        )

    async def cases_of(self, agreement_id: str) -> list[dict[str, Any]]:
        """The manual cases that hold (or held) the agreement."""
        return await self._query("SELECT * FROM cases WHERE new_agreement_id=?", (agreement_id,))

    async def active_not_yet_synced(self) -> int:
        """ACTIVE agreements that the CRM or BOSS has not answered about yet."""
        rows = await self._query(
            "SELECT count(*) AS n FROM agreements WHERE status='ACTIVE' AND (crm_synced IS NULL OR boss_synced IS NULL)",
            (),
        )
        return int(rows[0]["n"])

    async def active_synced(self) -> int:
        """ACTIVE agreements both the CRM and BOSS recorded."""
        rows = await self._query(
            "SELECT count(*) AS n FROM agreements WHERE status='ACTIVE' AND crm_synced='OK' AND boss_synced='OK'", ()
        )
        return int(rows[0]["n"])

    async def dead_by_reason(self) -> dict[str, int]:
        rows = await self._query("SELECT reason, count(*) AS n FROM dead_messages GROUP BY reason", ())
        return {r["reason"]: int(r["n"]) for r in rows}
