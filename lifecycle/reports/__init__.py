"""Reports people read: what expires when, which images stop verifying when, what is planned.

Public API: :func:`build_report` (pure data from the store, the plan and the log),
:func:`render` (html, md or json, same content), :func:`write_report` (the service's hook) and
:func:`forecast` (one image's verification horizons, pure).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from lifecycle.config import Config
from lifecycle.reports.forecast import Forecast, Horizon, forecast
from lifecycle.reports.gather import build_report
from lifecycle.reports.model import ReportData
from lifecycle.reports.render import FORMATS, render, write_rendered


def write_report(engine: Engine, config: Config, now: datetime, out_dir: Path, *,
                 log_engine: Engine | None = None, outbox: Path | None = None,
                 verify_images: bool = False) -> list[Path]:
    """``report.html``, ``report.md`` and ``report.json`` in ``out_dir``, each replaced atomically.

    The three files come from one :class:`ReportData`, so they always agree.
    """
    report = build_report(engine, config, now, log_engine=log_engine, outbox=outbox,
                          verify_images=verify_images)
    paths = [out_dir / f"report.{fmt}" for fmt in FORMATS]
    for fmt, path in zip(FORMATS, paths, strict=True):
        write_rendered(report, fmt, path)
    return paths


__all__ = ["FORMATS", "Forecast", "Horizon", "ReportData", "build_report", "forecast", "render",
           "write_report"]
