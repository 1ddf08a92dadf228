"""The async shell of reconciliation (flow 3): the two handlers, and the reconciler that runs
each accepted file in the background so that signings go on meanwhile.

- `recon.file`: recorded (party, file_name) in the message's own unit of work and answered later;
  the same file announced again gets the first answer again (nothing while it still runs). A file
  that was REJECTED may come again under its name with another sha256: it is reconciled anew.
- The reconciler takes files one at a time, in arrival order: checks the file's bytes (a worker
  thread), checks its records and compares it with the store in DuckDB (a process of its own), then,
  for a bank, applies the corrections in pages of short units of work, recording its progress with
  each page so that a restarted hub goes on where it stopped; for a province, writes the
  error-handling file.
- `errors.applied`: records the province's outcome; `failed` 0 means the province is balanced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from contracts.common import QueueReason
from contracts.crm import ErrorsApplied
from contracts.recon import ReconFile
from contracts.routing import Party, PartyKind
from hub.flows import reconciliation as recon
from hub.flows.common import Refused
from hub.messaging.outbound import to_rows
from hub.outgoing import Outgoing
from hub.recon.files import FileDefect
from hub.recon.records import Rollback, bank_line, bank_of, hub_of, roll_back
from hub.recon.staging import Announced, Comparison, Inbound, check_bytes
from hub.services.context import Ctx, Deps
from hub.services.recon_corrections import Batch, Planned, apply_batch, plan
from hub.services.recon_province import write_errors
from hub.store.recon_export import as_of
from hub.store.rows import ts
from hub.store.unit_of_work import Store

log = logging.getLogger("signhub.recon")
_TRIES = 3
BATCH = 500  # pairs per unit of work: the write lock is held for tens of milliseconds


async def on_recon_file(ctx: Ctx, msg: ReconFile) -> None:
    rows = ctx.uow.recon()
    party = str(ctx.sender)
    first = await rows.file(party, msg.file_name)
    if first is not None:
        if first["state"] != "REJECTED" or first["sha256"] == msg.sha256:
            if first["state"] != "RUNNING":
                await ctx.copy_latest_answer_to(first["message_id"])
            return
        await rows.drop_file(party, msg.file_name)  # a refused file, corrected under its name
    await rows.add_file({
        "party": party, "file_name": msg.file_name, "business_date": msg.business_date,
        "scope": msg.scope.value, "record_count": msg.record_count, "sha256": msg.sha256,
        "message_id": ctx.message_id, "state": "RUNNING", "received_at": ts(ctx.now),
    })  # fmt: skip
    await ctx.event("recon.file", file_name=msg.file_name, scope=msg.scope.value)


async def on_errors_applied(ctx: Ctx, msg: ErrorsApplied) -> None:
    rows = ctx.uow.recon()
    row = await rows.file_by_errors(str(ctx.sender), msg.file_name)
    if row is None:
        raise Refused(
            QueueReason.INVALID_MESSAGE, f"no error-handling file {msg.file_name} was sent to {ctx.sender}"
        )
    state = "BALANCED" if msg.failed == 0 else "APPLIED_WITH_FAILURES"
    await rows.update_file(
        str(ctx.sender), row["file_name"], state=state, applied=msg.applied, failed=msg.failed
    )
    await ctx.event(
        f"recon.{state.lower()}", file_name=row["file_name"], applied=msg.applied, failed=msg.failed
    )


@dataclass(frozen=True, slots=True)
class Job:
    party: Party
    file_name: str
    message_id: str
    announced: Announced
    window: recon.Window
    work: Path

    @property
    def kind(self) -> str:
        return self.party.kind.value

    @classmethod
    def of(cls, row: dict[str, Any], files: Path) -> Job:
        kind, code = row["party"].split(".", 1)
        party = Party(PartyKind(kind), code)
        day = date.fromisoformat(row["business_date"])
        announced = Announced(row["party"], day, row["scope"], row["record_count"], row["sha256"])
        return cls(party, row["file_name"], row["message_id"], announced, recon.Window.of(day, row["scope"]),
                   files / "work" / row["party"] / f"{row['file_name']}.duckdb")  # fmt: skip


class Reconciler:
    """Runs accepted files one at a time, off the event loop's back."""

    def __init__(self, store: Store, deps: Deps, files: Path, db_path: str, wake_relay: Callable[[], None],
                 poll_s: float = 0.5) -> None:  # fmt: skip
        self._store, self._deps, self._files, self._db_path = store, deps, files, db_path
        self._wake_relay = wake_relay
        self._poll_s = poll_s
        self._failures: dict[str, int] = {}
        # (file, phase, seconds, ended at on `time.perf_counter`), for logs and the benchmark
        self.phases: list[tuple[str, str, float, float]] = []
        self._clock = time.perf_counter

    def _phase(self, job: Job, name: str, since: float) -> float:
        now = self._clock()
        self._took(job, name, now - since)
        return now

    def _took(self, job: Job, name: str, seconds: float, ended: float | None = None) -> None:
        self.phases.append((job.file_name, name, seconds, self._clock() if ended is None else ended))
        log.info("%s %s: %s took %.2f s", job.party, job.file_name, name, seconds)

    async def run(self) -> None:
        while True:
            try:
                done = await self.run_next()
            except Exception:
                log.exception("reconciliation failed; trying again")
                done = False
            if not done:
                await asyncio.sleep(self._poll_s)

    async def run_next(self) -> bool:
        row = await self._store.recon_files().next_running()
        if row is None:
            return False
        job = Job.of(row, self._files)
        try:
            await self.reconcile(job, row)
        except Exception as exc:
            # Not the file's fault (the store or the comparison failed): try again, but a file that
            # fails every time must not hold up the files behind it.
            failures = self._failures[job.file_name] = self._failures.get(job.file_name, 0) + 1
            log.exception(
                "%s %s: reconciliation failed (%d of %d)", job.party, job.file_name, failures, _TRIES
            )
            if failures < _TRIES:
                raise
            await self._refuse(job, f"the hub could not reconcile the file ({type(exc).__name__}); "
                                    "announce it again under another name")  # fmt: skip
        return True

    async def reconcile(self, job: Job, row: dict[str, Any]) -> None:
        comparison = await asyncio.to_thread(Comparison, job.work)
        finished = False
        try:
            if row["progress"] == 0 or not await asyncio.to_thread(comparison.has_diff):
                # A comparison made anew numbers its pairs anew: earlier progress does not apply to it
                # (the corrections already made no longer differ; their counts are kept).
                row = row | {"progress": 0}
                await self._compare(job, comparison)
            if job.kind == "bank":
                await self._correct_hub(job, comparison, row)
            else:
                await self._answer_province(job, comparison)
            finished = True
        except FileDefect as defect:
            await self._refuse(job, str(defect))
            finished = True
        finally:
            # Kept after a failure: the next attempt (or a restarted hub) goes on from `progress`.
            await asyncio.to_thread(comparison.close, remove=finished)
        self._wake_relay()

    async def _compare(self, job: Job, comparison: Comparison) -> None:
        held = await self._held(job) if job.window.daily else []
        w = job.window
        started = self._clock()
        lines = [h["line"] for h in held if h["side"] == "file"]
        keys = [h["record_key"] for h in held if h["side"] == "hub"]
        # Opened once, following no link: both passes read this very file (hub.recon.area).
        with await asyncio.to_thread(Inbound, self._files, str(job.party), job.file_name) as inbound:
            await asyncio.to_thread(check_bytes, inbound.path, job.announced)
            self._phase(job, "checksum, lines, header and trailer", started)
            compared = await asyncio.to_thread(comparison.compare, job.kind, inbound.path, self._db_path,
                                               job.party.code, w.start, w.end, w.daily, lines, keys,
                                               (inbound.fd,))  # fmt: skip
        self._took(job, "record check", compared.check_s, self._clock() - compared.join_s)
        self._took(job, "join with the store", compared.join_s)
        total = compared.pairs
        log.info("%s %s: %d pairs differ", job.party, job.file_name, total)

    def _rollback(self, job: Job) -> Rollback:
        """Rows of the comparison, with agreements changed since the cut-off as they were then."""
        cutoff = ts(job.window.end) or ""
        db_path = self._db_path
        return lambda rows: roll_back(rows, cutoff, lambda ids: as_of(db_path, ids, cutoff))

    async def _held(self, job: Job) -> list[dict[str, Any]]:
        async with self._store.unit_of_work() as uow:
            return await uow.recon().held(str(job.party))

    async def _correct_hub(self, job: Job, comparison: Comparison, row: dict[str, Any]) -> None:
        counts: dict[str, int] = json.loads(row["counts"] or "null") or recon.zero_counts("bank")
        started = self._clock()
        # The next page is read and classified in a worker thread while this one is written.
        pages = _Pages(comparison, job, self._deps, self._rollback(job))
        try:
            async with self._store.bulk_work():
                next_page = pages.after(row["progress"])
                while (page := await next_page) is not None:
                    next_page = pages.after(page.last)
                    for name, n in page.counts.items():
                        counts[name] += n
                    await self._apply(job, page, counts, page.last)
        finally:
            await pages.stop()
        started = self._phase(job, "corrections", started)
        await self._finish(job, counts, "RECONCILED", recon.reconciled(job.file_name, counts))
        self._phase(job, "result", started)

    async def _apply(self, job: Job, page: _Page, counts: dict[str, int], progress: int) -> None:
        now = self._deps.clock()
        batch = Batch(str(job.party), job.file_name, job.message_id, page.corrections, now)
        async with self._store.unit_of_work() as uow:
            await apply_batch(uow, self._deps, batch)
            rows = uow.recon()
            await rows.hold(str(job.party), page.held, job.announced.business_date.isoformat())
            await rows.update_file(
                str(job.party), job.file_name, progress=progress, counts=json.dumps(counts)
            )
            if batch.out:
                await uow.add_outbox(to_rows(batch.out, self._deps.names, self._deps.new_id), now)

    async def _answer_province(self, job: Job, comparison: Comparison) -> None:
        name = recon.errors_file_name(job.file_name)
        target = self._files / "outbound" / str(job.party) / name
        started = self._clock()
        result = await asyncio.to_thread(write_errors, comparison, job.window, target, job.announced,
                                         self._rollback(job), self._files)  # fmt: skip
        started = self._phase(job, "error file", started)
        body = recon.errors_ready(name, job.announced.business_date, result.records, result.sha256)
        await self._finish(job, result.counts, "ERRORS_SENT", body, held=result.held, errors_file=name,
                           errors_count=result.records)  # fmt: skip
        self._phase(job, "result", started)

    async def _finish(self, job: Job, counts: dict[str, int], state: str, body: Any,
                      held: list[tuple[str, str, str | None]] | None = None, **fields: Any) -> None:  # fmt: skip
        now = self._deps.clock()
        day = job.announced.business_date.isoformat()
        out = [Outgoing(job.party, "recon.errors" if state == "ERRORS_SENT" else "recon.result", body,
                        job.message_id)]  # fmt: skip
        async with self._store.unit_of_work() as uow:
            rows = uow.recon()
            if job.window.daily:
                await rows.release_held(str(job.party), day)
                await rows.hold(str(job.party), held or [], day)
            await rows.update_file(str(job.party), job.file_name, state=state, counts=json.dumps(counts),
                                   finished_at=ts(now), **fields)  # fmt: skip
            await uow.add_outbox(to_rows(out, self._deps.names, self._deps.new_id), now)
            await uow.add_event(now, f"recon.{state.lower()}", party=str(job.party), message_id=job.message_id,
                                detail={"file_name": job.file_name, "counts": counts})  # fmt: skip
        log.info("%s %s %s: %s", job.party, job.file_name, state, counts)

    async def _refuse(self, job: Job, reason: str) -> None:
        now = self._deps.clock()
        out = [
            Outgoing(
                job.party, "recon.result", recon.rejected(job.file_name, reason, job.kind), job.message_id
            )
        ]
        async with self._store.unit_of_work() as uow:
            await uow.recon().update_file(str(job.party), job.file_name, state="REJECTED", reason=reason[:500],
                                          finished_at=ts(now))  # fmt: skip
            await uow.add_outbox(to_rows(out, self._deps.names, self._deps.new_id), now)
        log.info("%s %s REJECTED: %s", job.party, job.file_name, reason)


@dataclass(slots=True)
class _Page:
    last: int
    corrections: list[Planned]
    counts: dict[str, int]
    held: list[tuple[str, str, str | None]]


class _Pages:
    """The bank's differing pairs a page at a time, classified and planned in a worker thread, one
    page ahead of the unit of work that writes the previous one."""

    def __init__(self, comparison: Comparison, job: Job, deps: Deps, rollback: Rollback) -> None:
        self._comparison, self._job, self._deps, self._rollback = comparison, job, deps, rollback
        self._task: asyncio.Task[_Page | None] | None = None

    def after(self, n: int) -> asyncio.Task[_Page | None]:
        self._task = asyncio.create_task(asyncio.to_thread(self._page, n))
        return self._task

    async def stop(self) -> None:
        """Waits for the page being read: the comparison must not close under its thread."""
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        if self._task is not None and not self._task.cancelled():
            self._task.exception()  # retrieved: a failure of a page nobody waits for is not news

    def _page(self, after: int) -> _Page | None:
        rows = self._comparison.rows(after, BATCH)
        if not rows:
            return None
        self._rollback(rows)
        window, party, now = self._job.window, str(self._job.party), self._deps.clock()
        page = _Page(rows[-1]["n"], [], dict.fromkeys(recon.zero_counts("bank"), 0), [])
        for row in rows:
            bank, hub = bank_of(row), hub_of(row)
            verdict = recon.classify_bank(bank, hub, window)
            if verdict is recon.Verdict.HELD:
                page.held.append((bank.bank_agreement_no, "file", bank_line(bank)) if bank is not None
                                 else (hub.bank_agreement_no if hub else "", "hub", None))  # fmt: skip
                continue
            if isinstance(verdict, recon.Verdict):
                continue
            page.counts[verdict] += 1
            correction = recon.correct_hub(verdict, bank, hub, window)
            if correction is not None:
                page.corrections.append(plan(self._deps, party, correction, hub, now))
        return page
