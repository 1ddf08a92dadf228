"""The hub as a separate process (`python -m hub.cli run`) with its own prefix, temporary SQLite
store, small registry, segment table and data key; stopped and its topology deleted afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet

from bench import wire
from contracts.topology import Names
from hub.messaging.topology import HubNames, delete_topology
from hub.parties import Registry

REPO = Path(__file__).resolve().parent.parent
RETRY_DELAYS = "1,5,30,120"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(url: str, prefix: str, workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    (workdir / "segments.csv").write_text(wire.SEGMENTS_CSV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNHUB_")}
    env |= {
        "SIGNHUB_AMQP_URL": url, "SIGNHUB_PREFIX": prefix, "SIGNHUB_STORE": str(workdir / "hub.db"),
        "SIGNHUB_SEGMENTS": str(workdir / "segments.csv"), "SIGNHUB_FILES": str(workdir / "files"),
        "SIGNHUB_BANKS": ",".join(wire.BANKS), "SIGNHUB_PROVINCES": ",".join(wire.PROVINCES),
        "SIGNHUB_CRM_TIMEOUT_S": "3600", "SIGNHUB_RETRY_DELAYS_S": RETRY_DELAYS,
        "SIGNHUB_DATA_KEY": Fernet.generate_key().decode(), "SIGNHUB_HTTP_PORT": str(free_port()),
        "SIGNHUB_LOG_LEVEL": "INFO",
    }  # fmt: skip
    return env | extra


def export_code(commit: str, target: Path) -> str:
    """Writes hub/ and contracts/ as committed at `commit` under `target`; returns the full hash.
    Running the hub from there measures that commit, not the edits others are making right now."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=REPO, check=True,
                          capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", full, "hub", "contracts"], cwd=REPO, check=True,
                             capture_output=True, timeout=60).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    return full


class HubProcess:
    def __init__(
        self, url: str, prefix: str, workdir: Path, extra_env: dict[str, str], code: Path = REPO
    ) -> None:
        self.code = code
        self.url = url
        self.prefix = prefix
        self.workdir = workdir
        self.env = hub_env(url, prefix, workdir, extra_env)
        self.log_path = workdir / "hub.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def store(self) -> Path:
        return Path(self.env["SIGNHUB_STORE"])

    def settings_shown(self) -> dict[str, str]:
        return {k: ("<generated Fernet key>" if k == "SIGNHUB_DATA_KEY" else v)
                for k, v in sorted(self.env.items()) if k.startswith("SIGNHUB_")}  # fmt: skip

    async def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub.cli", "run", env=self.env, cwd=self.code, stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self._started():
            if self.proc.returncode is not None:
                raise RuntimeError(
                    f"the hub exited ({self.proc.returncode}) before it started:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start within {timeout_s:.0f} s:\n{self.log_tail()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 0.1)

    def _started(self) -> bool:
        return b" started" in self.log_path.read_bytes()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if '"level": "warning"' in line or '"level": "error"' in line]  # fmt: skip

    async def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), 10)
        return self.proc.returncode

    async def delete_topology(self) -> None:
        names = HubNames(Names(self.prefix))
        parties = Registry.of(list(wire.BANKS), list(wire.PROVINCES)).parties()
        await delete_topology(self.url, names, parties, len(RETRY_DELAYS.split(",")))

    def time_inside(self) -> dict[str, list[float]]:
        """Per outgoing type, seconds from the hub starting to process the message that caused it
        (the outbox row's created_at is that moment's clock) to the broker's confirm (sent_at)."""
        out: dict[str, list[float]] = {}
        with contextlib.closing(sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT type, created_at, sent_at FROM outbox WHERE sent_at IS NOT NULL")
            for msg_type, created, sent in rows:
                delta = datetime.fromisoformat(sent) - datetime.fromisoformat(created)
                out.setdefault(msg_type, []).append(delta.total_seconds())
        return out
