"""Percentiles and the lines the benchmark prints."""

from __future__ import annotations

import math
from collections.abc import Iterable

QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50, p90, p99 and max in milliseconds, and the count, of durations given in seconds."""
    values = sorted(v * 1000.0 for v in seconds if not math.isnan(v))
    out = {name: percentile(values, q) for name, q in QUANTILES}
    out["max"] = values[-1] if values else math.nan
    out["n"] = float(len(values))
    return out


def latency_line(label: str, s: dict[str, float]) -> str:
    return (f"  {label:<44} p50 {s['p50']:8.1f}  p90 {s['p90']:8.1f}  p99 {s['p99']:8.1f}  "
            f"max {s['max']:8.1f} ms  (n={int(s['n'])})")  # fmt: skip


def steady_rate(done_times: list[float], skip: float = 0.1) -> float:
    """Flows/s between the 10% and the 90% finished flow: the rate without ramp-up and drain."""
    times = sorted(t for t in done_times if not math.isnan(t))
    if len(times) < 20:
        return math.nan
    lo, hi = int(len(times) * skip), int(len(times) * (1 - skip)) - 1
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else math.nan


def p99_by_tenth(spans: list[tuple[float, float]]) -> list[float]:
    """p99 in milliseconds of the (start, end) spans of each tenth of a run, in the order given
    (flows in start order): shows whether a tail is spread over the run or comes in bursts."""
    tenth = max(1, math.ceil(len(spans) / 10))
    out = []
    for k in range(0, len(spans), tenth):
        values = sorted((e - s) * 1000.0 for s, e in spans[k : k + tenth] if not math.isnan(e - s))
        out.append(percentile(values, 0.99))
    return out
