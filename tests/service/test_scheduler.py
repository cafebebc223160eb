"""The job store holds JSON, never pickles: write access to the database is not code execution."""

from __future__ import annotations

import json
import os
import pickle
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from lifecycle.service.scheduler import JobSpec, start_scheduler, stop_scheduler
from lifecycle.store.queue import apscheduler_jobs

SPECS = [JobSpec("scan", timedelta(hours=1)), JobSpec("plan", timedelta(hours=2))]


class Planted:
    """Unpickling this writes a file: proof that someone ran pickle.loads on the row."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


def _rows(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        return {r.id: bytes(r.job_state) for r in conn.execute(select(apscheduler_jobs))}


def test_jobs_are_stored_as_json_and_kept_across_restarts(engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(minutes=30)
    scheduler = start_scheduler(engine, SPECS, lambda job, when: None, later)
    stop_scheduler(scheduler)
    rows = _rows(engine)
    assert set(rows) == {"scan", "plan"}
    assert json.loads(rows["plan"])["interval"] == 7200.0
    again = start_scheduler(engine, SPECS, lambda job, when: None, datetime.now(UTC))
    try:
        job = again.get_job("scan")
        assert job.next_run_time == later.replace(microsecond=later.microsecond)  # kept, not reset
        assert job.func.__name__ == "run_job" and job.args == ("scan",)
    finally:
        stop_scheduler(again)


def test_a_pickled_or_tampered_row_is_never_run_but_replaced(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    forged = json.dumps({"version": 1, "name": "plan", "interval": 7200.0,
                         "start": datetime.now(UTC).isoformat(),
                         "next_run": (datetime.now(UTC) - timedelta(seconds=10)).isoformat(),
                         "func": "os:system", "args": [f"touch {marker}"]}).encode()
    with engine.begin() as conn:
        conn.execute(insert(apscheduler_jobs), [
            {"id": "scan", "next_run_time": time.time() - 10,
             "job_state": pickle.dumps(Planted(marker))},
            {"id": "plan", "next_run_time": time.time() - 10, "job_state": forged}])
    ran: list[str] = []
    now = datetime.now(UTC)
    scheduler = start_scheduler(engine, SPECS, lambda job, when: ran.append(job), now)
    try:
        deadline = time.monotonic() + 10
        while set(ran) != {"scan", "plan"} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(ran) == {"scan", "plan"}  # both ran as run_job, due now
        plan = scheduler.get_job("plan")
        assert plan.func.__name__ == "run_job" and plan.args == ("plan",)
    finally:
        stop_scheduler(scheduler)
    assert not marker.exists()
    assert all(json.loads(state)["version"] == 1 for state in _rows(engine).values())
