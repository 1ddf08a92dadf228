"""A RabbitMQ node of our own, on its own port, for restarting the broker under a running hub.

The broker-restart tests and `bench.faults --broker-restarts` stop and start a broker's
application and close all its connections; done to the machine's broker, that would break
everything else using it (other tests, other benchmarks). This node has its own name, port,
distribution port, data and log folders (owned by `rabbitmq`, as the server wants), no plugins,
and is shut down and deleted afterwards (STYLE.md: several nodes work on this machine, each with
its own `RABBITMQ_CONFIG_FILE`). Starting one takes about 6 s here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerNode:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.name = f"signhub-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return os.environ | {
            "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_DIST_PORT": str(_free_port()), "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"), "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
        }  # fmt: skip

    async def start(self) -> None:
        (self.base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        for folder in ("mnesia", "log"):
            (self.base / folder).mkdir(exist_ok=True)
        await _run("chown", "-R", "rabbitmq:rabbitmq", str(self.base))
        await _run("rabbitmq-server", "-detached", env=self._env())
        await self.ctl("wait", str(self.base / "pid"), "--timeout", str(START_TIMEOUT_S))

    async def ctl(self, *args: str) -> str:
        """`rabbitmqctl -n <this node> ...`; fails with its output when it fails."""
        return await _run("rabbitmqctl", "-n", self.name, *args, env=self._env())

    async def stop_app(self) -> None:
        await self.ctl("stop_app")

    async def start_app(self) -> None:
        await self.ctl("start_app")
        await self.ctl("await_startup")

    async def close_all_connections(self) -> None:
        await self.ctl("close_all_connections", "signhub test: connections closed on purpose")

    async def shutdown(self) -> None:
        await self.ctl("shutdown")


async def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S + 30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"{' '.join(argv)} did not finish within {START_TIMEOUT_S + 30} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {out.decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")


@asynccontextmanager
async def broker_node() -> AsyncIterator[BrokerNode]:
    """A started node of our own; shut down and its folder deleted afterwards, whatever happened."""
    if shutil.which("rabbitmq-server") is None:
        raise RuntimeError("rabbitmq-server is not installed: a node of our own cannot be started")
    base = Path(tempfile.mkdtemp(prefix="signhub-broker-"))
    node = BrokerNode(base)
    try:
        await node.start()
        yield node
    finally:
        try:
            await node.shutdown()
        except RuntimeError:  # it never came up: end its process, if there is one
            pid = (base / "pid").read_text().strip() if (base / "pid").exists() else ""
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
