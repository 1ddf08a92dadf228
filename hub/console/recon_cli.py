"""`signhub recon`: reconciliation by hand, for an operator.

- `signhub recon run --party bank.ICBC FILE`: takes the file of a party the hub serves (copied
  into its inbound folder, following no link there), checks and reconciles it now, in this
  process, exactly as an announced file is; the answer (`recon.result` / `recon.errors`) waits
  in the outbox and reaches the party when a hub relays it. The operator's run is recorded under message_id `operator-<id>`.
- `signhub recon status [--party P]`: every file with its state, counts and reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.routing import Party, PartyKind
from hub.bootstrap import build_deps
from hub.parties import Registry
from hub.recon.area import create_new, open_folder
from hub.recon.files import FileDefect, parse_header, sha256_of
from hub.recon.staging import Inbound
from hub.services.reconciliation import Job, Reconciler
from hub.settings import Settings
from hub.store.rows import ts
from hub.store.sqlite import SqliteStore


def add_parser(sub: Any) -> None:
    recon = sub.add_parser("recon", help="reconciliation files by hand: run one, list them")
    actions = recon.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="check and reconcile a party's file now")
    run.add_argument("--party", required=True, help="the file's sender, e.g. bank.ICBC or crm.GD")
    run.add_argument("file", type=Path, help="the file (header, records, trailer)")
    status = actions.add_parser("status", help="reconciliation files and their outcome")
    status.add_argument("--party", help="only this party's files")


async def run_recon(settings: Settings, args: argparse.Namespace) -> int:
    if settings.store_is_postgres:
        print("signhub: reconciliation runs on the SQLite store only, for now", file=sys.stderr)
        return 2
    store = await SqliteStore.open(settings.store)
    try:
        if args.action == "status":
            return await _status(store, args.party)
        return await _run(settings, store, args.party, args.file)
    finally:
        await store.close()


async def _status(store: SqliteStore, party: str | None) -> int:
    for r in await store.recon_files().listing(party):
        detail = r["reason"] or r["counts"] or ""
        extra = f" errors file {r['errors_file']}" if r["errors_file"] else ""
        applied = f" applied {r['applied']} failed {r['failed']}" if r["applied"] is not None else ""
        print(
            f"{r['party']} {r['file_name']} {r['business_date']} {r['scope']} {r['state']} {detail}{extra}{applied}"
        )
    return 0


async def _run(settings: Settings, store: SqliteStore, party_text: str, source: Path) -> int:
    kind, _, code = party_text.partition(".")
    if kind not in ("bank", "crm") or not code:
        print(f"signhub: --party {party_text!r} is not bank.<CODE> or crm.<PROV>", file=sys.stderr)
        return 2
    if not Registry.of(settings.banks, settings.provinces).knows(Party(PartyKind(kind), code)):
        print(f"signhub: --party {party_text!r} is not a party of this hub (SIGNHUB_BANKS, SIGNHUB_PROVINCES)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        row = await asyncio.to_thread(_place, Path(settings.files), party_text, source)
    except (OSError, UnicodeDecodeError, FileDefect) as exc:
        print(f"signhub: {source}: {exc}", file=sys.stderr)
        return 2
    async with store.unit_of_work() as uow:
        if await uow.recon().file(party_text, source.name) is not None:
            print(
                f"signhub: {party_text} {source.name} was reconciled before (signhub recon status)",
                file=sys.stderr,
            )
            return 1
        await uow.recon().add_file(row)
    reconciler = Reconciler(store, await build_deps(settings, store), Path(settings.files), settings.store,
                            lambda: None)  # fmt: skip
    await reconciler.reconcile(
        Job.of(row | {"progress": 0}, Path(settings.files)), row | {"progress": 0, "counts": None}
    )
    return await _status(store, party_text) if await _report(store, party_text, source.name) else 1


def _place(files: Path, party: str, source: Path) -> dict[str, Any]:
    """Copies the file into the party's inbound folder (following no link there: a link at the
    name is replaced); its record as if it had been announced."""
    with source.open(encoding="utf-8") as f:
        header = parse_header(f.readline().rstrip("\n"))
    inbound = files / "inbound" / party / source.name
    if source.absolute() != inbound.absolute():
        folder = open_folder(files, ("inbound", party), create=True)
        try:
            with source.open("rb") as src, os.fdopen(create_new(folder, source.name), "wb") as dst:
                shutil.copyfileobj(src, dst)
        finally:
            os.close(folder)
    with Inbound(files, party, source.name) as placed:
        digest = sha256_of(placed.path)
    return {"party": party, "file_name": source.name, "business_date": header.business_date.isoformat(),
            "scope": header.scope, "record_count": header.record_count, "sha256": digest,
            "message_id": f"operator-{uuid.uuid4().hex[:16]}", "state": "OPERATOR",
            "received_at": ts(datetime.now(UTC))}  # fmt: skip


async def _report(store: SqliteStore, party: str, file_name: str) -> bool:
    row = await store.recon_files().outcome(party, file_name)
    if row is None:  # it was recorded before it was reconciled
        raise LookupError(f"no reconciliation file {party} {file_name}")
    state = row["state"]
    print(json.dumps({"file_name": file_name, "state": state, "counts": json.loads(row["counts"] or "null"),
                      "reason": row["reason"]}, ensure_ascii=False))  # fmt: skip
    return bool(state != "REJECTED")
