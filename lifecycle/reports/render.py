"""Render a :class:`ReportData` as a self-contained HTML page, Markdown or JSON.

The templates ship inside the package (``lifecycle/templates/report``). HTML is autoescaped;
Markdown is not, but its table cells are made safe by the ``cell`` filter.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2

from lifecycle._version import __version__
from lifecycle.errors import ReportError
from lifecycle.model.fleet import short
from lifecycle.pki.files import write_atomic
from lifecycle.reports.groups import group_actions, group_forecasts
from lifecycle.reports.model import ReportData
from lifecycle.reports.timeline import (
    LABEL_WIDTH,
    STATUS_COLOURS,
    build_timeline,
    until_text,
    verifiable,
)

FORMATS = ("html", "md", "json")


def _day(value: datetime | None, missing: str = "") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value is not None else missing


def _when(value: datetime | None, missing: str = "") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value is not None else missing


def _cell(value: object) -> str:
    """A Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lifecycle", "templates"), undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=True, default=False),
        keep_trailing_newline=True)
    env.filters.update(day=_day, when=_when, short=short, cell=_cell, verifiable=verifiable,
                       until=until_text)
    return env


def render(report: ReportData, fmt: str) -> bytes:
    """The report in ``fmt`` (html, md or json)."""
    if fmt == "json":
        return (json.dumps(report.to_dict(), indent=2) + "\n").encode()
    groups = {"forecast_groups": group_forecasts(report.forecasts),
              "action_groups": group_actions(report.actions)}
    if fmt == "md":
        return _environment().get_template("report/report.md.j2").render(
            r=report, **groups).encode()
    if fmt == "html":
        return _environment().get_template("report/report.html.j2").render(
            r=report, tl=build_timeline(report), tl_label_width=LABEL_WIDTH,
            cert_colours=list(STATUS_COLOURS.items()),
            version=__version__, **groups).encode()
    raise ReportError(f"unknown report format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")


def write_rendered(report: ReportData, fmt: str, out: Path) -> None:
    """Render and replace ``out`` atomically: readers never see half a report."""
    data = render(report, fmt)
    try:
        write_atomic(out, data, mode=0o644)
    except OSError as exc:
        raise ReportError(f"cannot write the report: {exc.strerror}", path=out) from None
