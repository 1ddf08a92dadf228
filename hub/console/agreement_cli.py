"""`signhub agreement show PHONE|AGREEMENT_ID`: the timeline report, read from the store directly
(SQLite in WAL mode lets it read while a hub runs)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from hub import timeline
from hub.services.query import agreement_reports
from hub.settings import Settings
from hub.store.sqlite import SqliteStore


async def show_agreement(settings: Settings, key: str, *, as_json: bool) -> int:
    if not Path(settings.store).exists():  # noqa: ASYNC240 - one stat before anything runs
        print(f"signhub: no store at SIGNHUB_STORE={settings.store!r}", file=sys.stderr)
        return 2
    store = await SqliteStore.open(settings.store)
    try:
        reports = await agreement_reports(store, key, datetime.now(UTC))
    finally:
        await store.close()
    if not reports:
        print(f"signhub: no agreement for {key!r}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"agreements": reports}, ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(timeline.render(r) for r in reports))
    return 0
