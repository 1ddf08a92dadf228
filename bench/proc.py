"""What /proc says about a process (CPU seconds, RSS) and about the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (its threads included), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of proc(5)


def status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status: VmRSS, VmHWM, ..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def pids_named(comm: str) -> list[int]:
    """Processes whose command name is `comm` (e.g. the broker's beam.smp)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def broker_pids() -> list[int]:
    """The RabbitMQ node's Erlang VM: `rabbitmqctl` runs a beam.smp of its own, short-lived."""
    found = []
    for pid in pids_named("beam.smp"):
        try:
            if b"rabbit boot" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
                found.append(pid)
        except OSError:
            continue
    return found


# Where Debian's RabbitMQ keeps the write-ahead log of its quorum queues (Ra).
BROKER_WAL_GLOB = "/var/lib/rabbitmq/mnesia/*/quorum/*/*.wal"


def broker_wal_files() -> frozenset[str] | None:
    """The names of the broker's quorum-queue WAL files, or None where they cannot be seen.

    When the WAL reaches its size limit (512 MB by default) the broker starts a new file and
    writes the old one's entries out to per-queue segment files: seconds of extra broker work,
    which showed as bursts in the per-hop tail. A run that saw a new file name saw that happen."""
    found = frozenset(str(p) for p in Path("/").glob(BROKER_WAL_GLOB.lstrip("/")))
    return found or None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    mem_kb = status_line("/proc/meminfo", "MemTotal")
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average before the run (1/5/15 min)": load,
    }


def status_line(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in {path}")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return (total - idle) / _TICK, total / _TICK


def machine_steal() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine had work (steal, /proc/stat)."""
    return int(Path("/proc/stat").read_text().splitlines()[0].split()[8]) / _TICK


def all_cpu() -> dict[tuple[int, str], float]:
    """CPU seconds of every process now running, by (pid, command name)."""
    out: dict[tuple[int, str], float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            out[(int(entry.name), name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def top_others(before: dict[tuple[int, str], float], after: dict[tuple[int, str], float], skip: set[int],
               count: int = 4) -> list[tuple[str, float]]:  # fmt: skip
    """The processes (not in `skip`) that used the most CPU between two `all_cpu()` readings."""
    used = [(f"{name}[{pid}]", after[(pid, name)] - before.get((pid, name), 0.0))
            for pid, name in after if pid not in skip]  # fmt: skip
    return sorted((u for u in used if u[1] > 0), key=lambda u: -u[1])[:count]
