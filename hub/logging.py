"""Structured logs: one JSON object per line, with the ids a record carries, never a full number.

Every record passes through `mask_digits_in_text`, so a card or ID number that slipped into a
message string is masked before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from hub.protection import mask_digits_in_text

_CONTEXT_KEYS = ("message_id", "correlation_id", "sender", "flow", "agreement_id", "msg_type")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_digits_in_text(record.getMessage()),
        }
        for key in _CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:  # ids a party chose (a message_id, a routing key) are masked too
                entry[key] = mask_digits_in_text(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = mask_digits_in_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "faststream", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
