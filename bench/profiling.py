"""py-spy on the hub process during a run, and a text summary of where its threads spend time.

py-spy samples the running hub from outside (`--nonblocking`: the hub is not paused) and writes
collapsed stacks ("thread (tid): name;frame;...;leaf count"); idle samples are left out, so the
samples of a thread over (seconds x rate) is how busy it was.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_THREAD = re.compile(r"^thread \(\d+\): ?(?P<name>[^;]*)")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    return found


async def start(pid: int, folded: Path, rate: int) -> asyncio.subprocess.Process:
    folded.parent.mkdir(parents=True, exist_ok=True)
    return await asyncio.create_subprocess_exec(
        py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--threads", "--idle",
        "--nonblocking", "--output", str(folded), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def stop(proc: asyncio.subprocess.Process, timeout_s: float = 30.0) -> str:
    """Stops the recording (py-spy writes its file on SIGINT); returns what py-spy said."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return err.decode(errors="replace").strip()


def _function(frame: str, keep_line: bool = False) -> str:
    """'name (path/to/file.py:123)' -> 'name (file.py)' (or with ':123'), the package kept for context."""
    m = re.match(r"^(?P<name>.*) \((?P<path>[^()]*?)(?P<line>:\d+)?\)$", frame)
    if not m:
        return frame
    path = m["path"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['name']} ({path}{m['line'] or '' if keep_line else ''})"


# Leaves where a thread waits rather than works (py-spy --idle keeps these samples).
_WAITING = ("EpollSelector.select (selectors.py", "Condition.wait (threading.py", "Queue.get (queue.py",
            "_connection_worker_thread (aiosqlite/core.py:59)", "_worker (concurrent/futures/thread.py:81)")  # fmt: skip


@dataclass
class Profile:
    threads: Counter[str] = field(default_factory=Counter)  # samples per thread name
    thread_ids: dict[str, set[str]] = field(default_factory=dict)
    leaf_lines: Counter[tuple[str, str]] = field(default_factory=Counter)  # (thread, leaf with line)
    own: Counter[str] = field(default_factory=Counter)  # main thread, working samples, per leaf function
    inclusive: Counter[str] = field(default_factory=Counter)  # main thread, working samples
    main_working: int = 0


def parse(folded: str) -> Profile:
    p = Profile()
    for line in folded.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        frames = m["stack"].split(";")
        t = _THREAD.match(frames[0])
        thread = (t["name"] or "thread") if t else "?"
        count = int(m["count"])
        p.threads[thread] += count
        p.thread_ids.setdefault(thread, set()).add(frames[0].split(":")[0])
        leaf = _function(frames[-1], keep_line=True) if len(frames) > 1 else "(no Python frame)"
        p.leaf_lines[(thread, leaf)] += count
        if thread != "MainThread" or leaf.startswith(_WAITING):
            continue
        p.main_working += count
        calls = [_function(f) for f in frames[1:]] or ["(no Python frame)"]
        p.own[calls[-1]] += count
        for fn in set(calls):
            p.inclusive[fn] += count
    return p


def summary(folded: str, seconds: float, rate: int, top: int = 25) -> str:
    p = parse(folded)
    wall = seconds * rate
    lines = [f"py-spy --idle --nonblocking, {rate} samples/s over {seconds:.1f} s ({wall:.0f} samples per thread);",
             "not pausing the hub costs some torn (partial) stacks, counted where they end", "",
             "what each thread does (% of its wall time; several threads of one name are added up):"]  # fmt: skip
    for thread, n in p.threads.most_common():
        count = len(p.thread_ids[thread])
        plural = "s" if count > 1 else ""
        lines.append(f"  {thread} ({count} thread{plural}): {100 * n / wall:.1f}% of one thread's wall time")
        leaves = [(leaf, c) for (th, leaf), c in p.leaf_lines.most_common() if th == thread][:6]
        for leaf, c in leaves:
            tag = "  (waiting)" if leaf.startswith(_WAITING) else ""
            lines.append(f"     {100 * c / wall:5.1f}%  {leaf}{tag}")
    busy = p.main_working or 1
    lines += ["", f"MainThread working (not waiting in select): {100 * p.main_working / wall:.1f}% of wall time; "
              f"shares below are of those {p.main_working} samples", "",
              f"top {top} functions by own time (leaf frame):"]  # fmt: skip
    for fn, n in p.own.most_common(top):
        lines.append(f"  {100 * n / busy:5.1f}%  {fn}")
    lines += [
        "",
        f"top {top} functions by inclusive time (the event loop's own frames, on most stacks, left out):",
    ]
    shown = [(fn, n) for fn, n in p.inclusive.most_common() if n < 0.7 * busy][:top]
    for fn, n in shown:
        lines.append(f"  {100 * n / busy:5.1f}%  {fn}")
    lines += ["", "the hub's own code (hub/, contracts/) by inclusive time:"]
    own_code = [(fn, n) for fn, n in p.inclusive.most_common() if ("(hub/" in fn or "(contracts/" in fn)]
    for fn, n in [(fn, n) for fn, n in own_code if n < 0.7 * busy][:top]:
        lines.append(f"  {100 * n / busy:5.1f}%  {fn}")
    return "\n".join(lines)


def main() -> None:
    """Summarises a collapsed-stack file again: python -m bench.profiling FILE SECONDS RATE."""
    folded, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(summary(Path(folded).read_text(), seconds, rate))


if __name__ == "__main__":
    main()
