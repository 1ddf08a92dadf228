"""Reconciliation files as the reconciler, its CLI and the demo read them outside a unit of work
(written once for both dialects against the store's `query`; what a reconciliation writes is in
`hub.store.recon_rows`)."""

from __future__ import annotations

from typing import Any

from hub.store.dbapi import Query


class ReconFileReads:
    def __init__(self, query: Query) -> None:
        self._query = query

    async def next_running(self) -> dict[str, Any] | None:
        """The file that has waited longest to be reconciled (state RUNNING)."""
        rows = await self._query("SELECT * FROM recon_files WHERE state='RUNNING' ORDER BY received_at LIMIT 1", ())
        return rows[0] if rows else None

    async def listing(self, party: str | None = None) -> list[dict[str, Any]]:
        """Every file (or one party's) with its outcome, in the order they came."""
        return await self._query(
            "SELECT party, file_name, business_date, scope, state, counts, reason, errors_file, applied, failed"
            " FROM recon_files" + (" WHERE party=?" if party else "") + " ORDER BY received_at",
            (party,) if party else (),
        )

    async def outcome(self, party: str, file_name: str) -> dict[str, Any] | None:
        """A file's state, counts and reason."""
        rows = await self._query(
            "SELECT state, counts, reason FROM recon_files WHERE party=? AND file_name=?", (party, file_name)
        )
        return rows[0] if rows else None

    async def latest_state(self, party: str) -> str | None:
        """The state of the party's latest file, if it sent one."""
        rows = await self._query(
            "SELECT state FROM recon_files WHERE party=? ORDER BY received_at DESC LIMIT 1", (party,)
        )
        return str(rows[0]["state"]) if rows else None
