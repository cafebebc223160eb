"""Service logging: plain lines for a terminal, or one JSON object per line for a log collector.

Structured fields travel as ``extra={"fields": {...}}``. Nothing secret is ever passed to a logger
(passphrases and keys are not in actions or results), so the formatter does not filter.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}``, one object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, sort_keys=False)


def configure(log_format: str, level: int) -> None:
    """Replace the root handlers' format; ``json`` or ``text``."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    formatter = (JsonFormatter() if log_format == "json"
                 else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
    # APScheduler logs every run at INFO: keep it to warnings unless debugging
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
