"""The hub as a separate process (`signhub run`), so a test can kill it with SIGKILL and restart it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from hub.settings import Settings

STARTED = b"started"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives `signhub run` these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNHUB_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, dict):  # name=value pairs (web halls, bank pages)
            value = ",".join(
                f"{k}={getattr(v, 'get_secret_value', lambda v=v: v)()}" for k, v in value.items()
            )
        env[f"SIGNHUB_{name.upper()}"] = str(value)
    return env


class HubProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self._env = settings_env(settings)
        self._log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, *, crash_at: str | None = None, timeout: float = 30.0) -> None:
        env = dict(self._env)
        if crash_at:  # fault injection takes two switches (hub.faults)
            env["SIGNHUB_FAULT_CRASH_AT"] = crash_at
            env["SIGNHUB_ALLOW_FAULT_INJECTION"] = "true"
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli", "run", env=env, stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(self._until_started(), timeout)
        asyncio.get_running_loop().create_task(self._drain())

    async def _until_started(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with self._log_path.open("ab") as log:
            while True:
                line = await self.proc.stderr.readline()
                if not line:
                    raise AssertionError(f"the hub exited before it started; see {self._log_path}")
                log.write(line)
                if STARTED in line:
                    return

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with self._log_path.open("ab") as log:
            while line := await self.proc.stderr.readline():
                log.write(line)

    async def died(self, timeout: float = 20.0) -> int:
        """Waits until the hub exits (a fault killed it); returns the exit code."""
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the hub did not die within {timeout}s") from None

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
