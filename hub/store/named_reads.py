"""The named reads both stores offer (console, reports, reconciliation files, housekeeping, a
ping), written once over the store's `query`, which speaks either dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.store.console_rows import ConsoleReads
from hub.store.housekeeping_rows import HousekeepingReads
from hub.store.recon_reads import ReconFileReads
from hub.store.report_rows import ReportReads


class NamedReads:
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # each store's own

    def console(self) -> ConsoleReads:
        return ConsoleReads(self.query)

    def reports(self) -> ReportReads:
        return ReportReads(self.query)

    def recon_files(self) -> ReconFileReads:
        return ReconFileReads(self.query)

    def housekeeping(self) -> HousekeepingReads:
        return HousekeepingReads(self.query)

    async def ping(self) -> None:
        await self.query("SELECT 1 AS one")
