"""Keeps the broker library's reconnect chatter from drowning what `signhub simulate` says itself.

aio-pika and aiormq log every failed attempt of every connection to reconnect: with a party each
(74 with the full registry) and an attempt every `broker_reconnect_s`, a two-minute outage wrote
tens of thousands of lines. The watch (`hub.liveness`) says once per change of state which party
works; of the library's lines, each kind (logger and message template) is let through once per
`every_s`, so the first of each still tells how the outage began.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LIBRARY_LOGGERS = ("aiormq.connection", "aio_pika.robust_connection", "aio_pika.tools")
_KINDS_LIMIT = 1_000  # templates are few; a library that formats its messages itself must not grow this


class OncePer(logging.Filter):
    """Lets a record through unless one of the same logger and template passed within `every_s`."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every_s = every_s
        self._clock = clock
        self._passed: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = (record.name, str(record.msg)), self._clock()
        last = self._passed.get(kind)
        if last is not None and now - last < self._every_s:
            return False
        if len(self._passed) >= _KINDS_LIMIT:
            self._passed.clear()
        self._passed[kind] = now
        return True


@contextmanager
def quiet_reconnects(every_s: float = 60.0) -> Iterator[None]:
    """Within the block, the library's reconnect lines of each kind pass once per `every_s`."""
    once = OncePer(every_s)
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    for logger in loggers:
        logger.addFilter(once)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(once)
