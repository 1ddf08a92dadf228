"""A province's error-handling file (差错处理文件) from its comparison, written streaming.

Synchronous, for a worker thread. The differing pairs are classified twice: once to count (the
header carries the count), once to write; both passes read the comparison a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.flows import reconciliation as recon
from hub.recon.files import FileWriter, Header
from hub.recon.records import Rollback, crm_line, crm_of, error_fields, hub_of
from hub.recon.staging import Announced, Comparison

HUB_SENDER = "hub.UPS"  # the unified payment system, as the sender of error-handling files
_PAGE = 5_000


@dataclass(slots=True)
class ErrorsWritten:
    records: int = 0
    sha256: str = ""
    counts: dict[str, int] = field(default_factory=lambda: recon.zero_counts("crm"))
    held: list[tuple[str, str, str | None]] = field(default_factory=list)


def _verdicts(
    comparison: Comparison, window: recon.Window, rollback: Rollback
) -> Iterator[tuple[object, dict[str, Any]]]:
    after = 0
    while rows := comparison.rows(after, _PAGE):
        after = rows[-1]["n"]
        rollback(rows)
        for row in rows:
            yield recon.classify_crm(crm_of(row), hub_of(row), window), row


def write_errors(comparison: Comparison, window: recon.Window, target: Path, announced: Announced,
                 rollback: Rollback, area: Path) -> ErrorsWritten:  # fmt: skip
    """Writes `target`, under the file area `area`: no folder or name on the way is followed if it
    is a link (a province can write to its folders)."""
    result = ErrorsWritten()
    for verdict, row in _verdicts(comparison, window, rollback):
        if verdict is recon.Verdict.HELD:
            crm, hub = crm_of(row), hub_of(row)
            result.held.append((crm.agreement_id, "file", crm_line(crm)) if crm is not None
                               else (hub.agreement_id if hub else "", "hub", None))  # fmt: skip
        elif isinstance(verdict, recon.ErrorRecord):
            result.records += 1
            result.counts[verdict.reason_code] += 1
    header = Header(HUB_SENDER, announced.business_date, announced.scope, result.records)
    with FileWriter(target, header, within=area) as writer:
        for verdict, _ in _verdicts(comparison, window, rollback):
            if isinstance(verdict, recon.ErrorRecord):
                writer.write(error_fields(verdict))
    result.sha256 = writer.sha256
    return result
