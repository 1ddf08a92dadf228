"""The filter that keeps aio-pika's reconnect chatter from drowning `signhub simulate`'s own log."""

from __future__ import annotations

import logging

from simulators.quiet_logs import OncePer


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_each_kind_of_line_passes_once_per_period_whatever_its_arguments() -> None:
    now = [0.0]
    once = OncePer(60.0, clock=lambda: now[0])
    attempt = "error when creating transport: %r"

    passed = [once.filter(_record("aiormq.connection", attempt, f"try {i}")) for i in range(5)]
    other = once.filter(_record("aio_pika.robust_connection", "Connection attempt to %r failed", "x"))
    now[0] = 60.0
    after = once.filter(_record("aiormq.connection", attempt, "try 6"))

    assert passed == [True, False, False, False, False]
    assert other, "another kind of line passes on its own"
    assert after, "the same kind passes again once the period is over"
