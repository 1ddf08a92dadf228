"""A RabbitMQ node of our own, on its own port, for restarting the broker under a running hub.

The broker-restart tests and `bench.faults --broker-restarts` stop and start a broker's
application and close all its connections; done to the machine's broker, that would break
everything else using it (other tests, other benchmarks). This node has its own name, port,
distribution port, data and log folders (owned by `rabbitmq`, as the server wants), no plugins,
and is shut down and deleted afterwards (STYLE.md: several nodes work on this machine, each with
its own `RABBITMQ_CONFIG_FILE`). Starting one takes about 6 s here.

With `tls`, the node also listens for amqps:// on a port of its own, asks every client for a
certificate signed by the given CA and refuses a client without one; its plain listener stays.
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
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class NodeTls:
    """The broker's side of TLS (PEM files): the CA its clients' certificates must chain to, and its
    own certificate and key. The node works on copies, since the server reads them as `rabbitmq`."""

    ca: Path
    cert: Path
    key: Path


class BrokerNode:
    def __init__(self, base: Path, tls: NodeTls | None = None) -> None:
        self.base = base
        self.port = _free_port()
        self.name = f"signhub-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.tls = tls
        self.tls_port = _free_port() if tls else None
        self.tls_url = f"amqps://guest:guest@127.0.0.1:{self.tls_port}/" if tls else None

    def _env(self) -> dict[str, str]:
        return os.environ | {
            "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_DIST_PORT": str(_free_port()), "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"), "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
        }  # fmt: skip

    async def start(self) -> None:
        plain = f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        (self.base / "rabbitmq.conf").write_text(plain + self._tls_conf())
        (self.base / "enabled_plugins").write_text("[].\n")
        for folder in ("mnesia", "log"):
            (self.base / folder).mkdir(exist_ok=True)
        await _run("chown", "-R", "rabbitmq:rabbitmq", str(self.base))
        await _run("rabbitmq-server", "-detached", env=self._env())
        await self.ctl("wait", str(self.base / "pid"), "--timeout", str(START_TIMEOUT_S))

    def _tls_conf(self) -> str:
        if self.tls is None:
            return ""
        folder = self.base / "tls"
        folder.mkdir(exist_ok=True)
        for name, source in (("ca", self.tls.ca), ("cert", self.tls.cert), ("key", self.tls.key)):
            shutil.copyfile(source, folder / f"{name}.pem")  # owned by rabbitmq with the rest below
        (folder / "key.pem").chmod(0o600)
        return (f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                f"ssl_options.cacertfile = {folder / 'ca.pem'}\n"
                f"ssl_options.certfile = {folder / 'cert.pem'}\n"
                f"ssl_options.keyfile = {folder / 'key.pem'}\n"
                "ssl_options.verify = verify_peer\n"
                "ssl_options.fail_if_no_peer_cert = true\n")  # fmt: skip

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
async def broker_node(tls: NodeTls | None = None) -> AsyncIterator[BrokerNode]:
    """A started node of our own (with a TLS listener too, given `tls`); shut down and its folder
    deleted afterwards, whatever happened."""
    if shutil.which("rabbitmq-server") is None:
        raise RuntimeError("rabbitmq-server is not installed: a node of our own cannot be started")
    base = Path(tempfile.mkdtemp(prefix="signhub-broker-"))
    node = BrokerNode(base, tls)
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
