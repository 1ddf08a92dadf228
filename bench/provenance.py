"""Which commit a benchmark measured: every output names it in a line of its own (house rule:
"Every output file names the commit it measured"), so that a figure measured before a change to
the path it measures can be told apart, then rerun or marked stale.

`git describe --always --dirty`: the working tree the benchmark ran from, `-dirty` when files
differed from that commit (others edit the same working tree).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREFIX = "commit measured: "


def commit_measured(rev: str | None = None) -> str:
    """The working tree's `git describe --always --dirty`, or the short hash of `rev` (a commit
    the benchmark exported and ran in place of the working tree)."""
    args = ["git", "rev-parse", "--short", rev] if rev else ["git", "describe", "--always", "--dirty"]
    try:
        found = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc!r})"
    return found.stdout.strip() or f"unknown ({found.stderr.strip() or 'not a git checkout'})"


def measured_line(hub_rev: str | None = None) -> str:
    """The output's line: the working tree's commit, or the hub's commit and the bench's apart."""
    if hub_rev is None:
        return f"{PREFIX}{commit_measured()}"
    return f"{PREFIX}hub {commit_measured(hub_rev)} (git archive of {hub_rev}); bench {commit_measured()}"
