"""`serve` with its default work source runs the real planner: actions queued, applied once, audited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.config import DEFAULT_WORK_SOURCE
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.queue import DONE, FAILED, WorkQueue
from tests.service.harness import ServeProcess, launch, stop_all, write_config


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    stop_all(started)


@pytest.mark.slow
def test_serve_plans_and_applies_a_reissue_set_once_and_publishes(
        tmp_path: Path, processes: list[ServeProcess]) -> None:
    assert DEFAULT_WORK_SOURCE == "lifecycle.service.planner_source:planner_source"
    url = sqlite_url(tmp_path / "lifecycle.db")
    config = write_config(tmp_path / "serve.toml", url, work_source=DEFAULT_WORK_SOURCE,
                          poll_interval="200ms", publish_interval="2s", report_directory="reports",
                          bundle_outbox="outbox")  # fmt: skip
    with config.open("a") as out:
        out.write('\n[[image_sets]]\nname = "base"\npaths = ["images/*.sif"]\nstrategy = "reissue"\n'
                  'key_algorithm = "p256"\ncertificate_lifetime_days = 90\n'
                  'publish_directory = "publish/base"\n')
    env = {"SIF_LIFECYCLE_PASSPHRASE": "service-test"}
    ca_init = ["ca", "init", "--root-algorithm", "p256", "--intermediate-algorithm", "p256"]
    for args in (["db", "upgrade"], ca_init):
        result = CliRunner().invoke(cli, [*args, "--config", str(config)], env=env)
        assert result.exit_code == 0, result.output
    planned = CliRunner().invoke(cli, ["plan", "--json", "--config", str(config)], env=env)
    assert planned.exit_code == 0, planned.output
    expected = [a for a in json.loads(planned.output)["actions"] if a["ready"]]
    assert expected, "a new reissue set must need a key and a certificate"
    proc = launch(processes, config, tmp_path, tmp_path / "serve.log")
    queue = WorkQueue(make_engine(url))
    deadline = time.monotonic() + 60
    while not (tmp_path / "publish" / "base").is_dir() or queue.counts()[DONE] < len(expected):
        assert proc.process.poll() is None, proc.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{queue.counts()}\n{proc.log_path.read_text()[-3000:]}"
        time.sleep(0.2)
    assert queue.counts()[FAILED] == 0
    report, outbox = tmp_path / "reports" / "report.html", tmp_path / "outbox"
    while not report.is_file() or not list(outbox.glob("*.tar.gz")):
        assert time.monotonic() < deadline, f"no report or bundle:\n{proc.log_path.read_text()[-3000:]}"
        time.sleep(0.2)
    assert "base" in (tmp_path / "reports" / "report.md").read_text()
    published = {p.name for p in (tmp_path / "publish" / "base").iterdir()}
    assert any(name.endswith(".crt") or name.endswith(".pem") for name in published), published
    after = CliRunner().invoke(cli, ["plan", "--json", "--config", str(config)], env=env)
    assert not [a for a in json.loads(after.output)["actions"] if a["ready"]], after.output
    assert proc.terminate()[0] == 0
