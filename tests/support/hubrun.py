"""Starting a real hub for a test: its own prefix, SQLite file, HTTP port and a small registry."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from hub.bootstrap import Hub, build_hub
from hub.broker_connection import tls_context, url_with_tls_files
from hub.messaging.topology import delete_topology
from hub.settings import Settings, load_settings
from hub.store.unit_of_work import Store
from tests.support.probe import Probe

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BANKS = ["ICBC", "CCB"]
PROVINCES = ["GD", "BJ"]
# Our own segment table: 138xxxx is Guangdong, 139xxxx Beijing, 150xxxx is unknown, 1381234 is an
# exception (a longest-prefix match), 13899990000 is overridden (a ported number).
SEGMENTS = "prefix,province\n138,GD\n139,BJ\n1381234,BJ\n"
OVERRIDES = "phone,province\n13899990000,BJ\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_settings(workdir: Path, **overrides: Any) -> Settings:
    (workdir / "segments.csv").write_text(SEGMENTS)
    (workdir / "overrides.csv").write_text(OVERRIDES)
    values: dict[str, Any] = {
        "prefix": f"t{uuid.uuid4().hex[:10]}",
        "store": str(workdir / "hub.db"),
        "segments": workdir / "segments.csv",
        "segment_overrides": workdir / "overrides.csv",
        "files": workdir / "files",
        "banks": BANKS,
        "provinces": PROVINCES,
        "crm_timeout_s": 1.0,
        "crm_asks": 2,
        "retry_delays_s": [0.2, 0.4],
        "data_key": Fernet.generate_key().decode(),
        "http_port": free_port(),
        "amqp_url": AMQP_URL,
    }
    values.update(overrides)
    return load_settings(**values)


def party_queues(settings: Settings) -> list[str]:
    queues = [f"{settings.prefix}.party.bank.{b}" for b in settings.banks]
    queues += [f"{settings.prefix}.party.{k}.{p}" for p in settings.provinces for k in ("crm", "boss")]
    return [*queues, f"{settings.prefix}.manual", f"{settings.prefix}.dead"]


@asynccontextmanager
async def running_hub(
    workdir: Path, store: Store | None = None, clock: Callable[[], datetime] | None = None, **overrides: Any
) -> AsyncIterator[tuple[Hub, Probe]]:
    """A started hub and a probe on every party, manual and dead queue; all deleted afterwards."""
    settings = hub_settings(workdir, **overrides)
    url = settings.amqp_url.get_secret_value()  # the machine's broker unless a test gives its own node
    hub = await build_hub(settings, store=store, **({"clock": clock} if clock else {}))
    await hub.start()
    # Over amqps:// the probe shows the hub's own TLS settings: a party with a certificate from the same CA.
    probe = await Probe.connect(url, settings.prefix, party_queues(settings), ssl_context=tls_context(settings))
    try:
        yield hub, probe
    finally:
        await probe.close()
        await hub.stop()
        await delete_topology(url_with_tls_files(settings), hub.hub_names, hub.registry.parties(),
                              len(settings.retry_delays_s))  # fmt: skip
