"""One demo run for the whole session: three simulated years, with the report's claims checked
by the forecast oracle (tests/reports/oracle.py) at several simulated dates along the way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.demo import Demo, DemoResult
from lifecycle.reports import ReportData, build_report
from tests.conftest import require
from tests.reports.oracle import Oracle, check_report
from tests.sks import SKS, Sks, running_sks

CHECKED_AFTER = (250, 420, 740)
"""Days after the start the oracle checks the report (and at the end): before and after the
first key rotation, after app-solver arrived (day 400) and after ci-nightly was signed (day 700)."""


@dataclass
class DemoRun:
    result: DemoResult
    lines: list[str]
    oracle: Oracle
    reports: list[ReportData] = field(default_factory=list)
    """The reports the oracle checked, oldest first."""


@pytest.fixture(scope="session")
def keyserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sks]:
    """A real sks the demo's PGP set publishes to (one for the session, like the demo run)."""
    require(Path(SKS).is_file(), "Debian package sks")
    with running_sks(tmp_path_factory.mktemp("sks")) as server:
        yield server


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, keyserver: Sks) -> DemoRun:
    lines: list[str] = []
    oracle = Oracle()
    reports: list[ReportData] = []
    demo = Demo(tmp_path_factory.mktemp("demo") / "ws", lines.append, keyserver=keyserver.url)
    due = [demo.clock.now + timedelta(days=d) for d in CHECKED_AFTER] + [demo.end]

    def observe(now: datetime) -> None:
        if not due or now < due[0]:
            return
        while due and due[0] <= now:
            due.pop(0)
        data = build_report(demo.ca.engine, demo.config, now)
        log_key = (demo.workspace / "log.vkey").read_text().strip()
        check_report(oracle, data, demo.config.policies, demo.ca.engine, log_key)
        reports.append(data)

    demo.observe = observe
    return DemoRun(demo.run(), lines, oracle, reports)


@pytest.fixture(scope="session")
def demo(demo_run: DemoRun) -> tuple[DemoResult, list[str]]:
    return demo_run.result, demo_run.lines
