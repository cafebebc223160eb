"""``sif-lifecycle serve`` as real processes on real databases, doing real work (signing SIF images).

What must hold: several instances share the queue with no action done twice; an instance killed
mid-action leaves its claim to expire and another finishes the work, with every image still
verifying; jobs missed during an outage run once at restart; SIGTERM exits 0 in bounded time.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509

from lifecycle.cli.main import cli
from lifecycle.integrity.keys import load_signing_key, load_verifier_keys, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import create_image
from lifecycle.store import audit, migrate
from lifecycle.store.db import make_engine, session_scope, sqlite_url
from lifecycle.store.queue import CLAIMED, DONE, WorkQueue
from tests.conftest import small_objects
from tests.keygen import write_pem_pair
from tests.service.fake_work import read_events
from tests.service.harness import ServeProcess, launch, stop_all, write_config


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    stop_all(started)


def make_fleet(work: Path, count: int) -> list[Path]:
    """``count`` tiny images signed by ``old``; the actions add ``new``'s signature (signer.pem)."""
    keys = work / "testkeys"
    keys.mkdir(parents=True)
    old_private, _ = write_pem_pair(keys, "old", "ed25519")
    new_private, _ = write_pem_pair(keys, "new", "ed25519")
    (work / "signer.pem").write_bytes(new_private.read_bytes())
    old = DsseSigner((load_signing_key(old_private, no_passphrase),))
    images = []
    actions = []
    for n in range(count):
        path = work / "images" / f"img-{n:03d}.sif"
        path.parent.mkdir(exist_ok=True)
        create_image(path, small_objects())
        sign_image(str(path), old, SignOptions())
        images.append(path)
        actions.append({"key": f"sign:{path.name}", "kind": "sign", "subject": str(path),
                        "due": "2026-01-01T00:00:00+00:00", "not_before": "2026-01-01T00:00:00+00:00",
                        "reason": "rotation to the new key", "image_set": "test"})
    (work / "actions.json").write_text(json.dumps(actions))
    return images


def assert_verifies_with_old_and_new(work: Path, images: list[Path]) -> None:
    for name in ("old", "new"):
        keys = load_verifier_keys(work / "testkeys" / f"{name}.pub")
        for image in images:
            report = verify_image(str(image), keys, VerifyOptions())
            assert report.ok, f"{image.name} does not verify with {name}: {report.failure_summary()}"


def wait_until_done(url: str, total: int, timeout: float, *procs: ServeProcess) -> WorkQueue:
    queue = WorkQueue(make_engine(url))
    deadline = time.monotonic() + timeout
    while queue.counts()[DONE] < total:
        for proc in procs:
            assert proc.process.poll() is None, proc.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"not done in {timeout}s: {queue.counts()}"
        time.sleep(0.1)
    return queue


def applied(work: Path) -> Counter[str]:
    return Counter(e[1] for e in read_events(work) if e[0] == "applied")


@pytest.mark.postgres
@pytest.mark.slow
def test_two_instances_on_postgres_share_200_actions_each_applied_once(
        pg_url: str, tmp_path: Path, processes: list[ServeProcess]) -> None:
    migrate.upgrade(pg_url)
    images = make_fleet(tmp_path, 200)
    config = write_config(tmp_path / "serve.toml", pg_url, workers=2, lease="10s",
                          poll_interval="200ms", plan_interval="1s")
    actions = tmp_path / "actions.json"
    actions.rename(tmp_path / "later.json")  # nothing to plan until both instances are up
    for n in range(2):
        launch(processes, config, tmp_path, tmp_path / f"serve-{n}.log", apply_delay=0.005)
    for proc in processes:
        proc.wait_for(lambda p=proc: bool(p.events("service.started")), 30, "start-up")
    (tmp_path / "later.json").rename(actions)
    queue = wait_until_done(pg_url, 200, 120, *processes)
    counts = applied(tmp_path)
    assert sorted(counts) == sorted(f"sign:{p.name}" for p in images)
    assert set(counts.values()) == {1}, "an action was applied twice"
    by_pid = Counter(e[2] for e in read_events(tmp_path) if e[0] == "applied")
    assert len(by_pid) == 2 and min(by_pid.values()) > 10, f"the work was not shared: {by_pid}"
    for proc in processes:
        code, took = proc.terminate()
        assert (code, took < 15) == (0, True)
    assert queue.counts()[DONE] == 200
    with session_scope(queue.engine) as session:
        done = audit.entries(session, action="service.action.done")
    assert sorted(json.loads(r.detail)["planned"]["subject"] for r in done) == sorted(map(str, images))
    plan_runs = [r for r in job_runs(pg_url) if r["job"] == "plan"]
    assert len({r["scheduled"] for r in plan_runs}) == len(plan_runs), "a scheduled run ran twice"
    assert_verifies_with_old_and_new(tmp_path, images)


@pytest.mark.postgres
@pytest.mark.slow
def test_instance_killed_mid_action_leaves_its_claim_to_expire_and_another_finishes(
        pg_url: str, tmp_path: Path, processes: list[ServeProcess]) -> None:
    migrate.upgrade(pg_url)
    images = make_fleet(tmp_path, 200)
    config = write_config(tmp_path / "serve.toml", pg_url, workers=1, lease="2s",
                          poll_interval="200ms", plan_interval="1h")
    victim = launch(processes, config, tmp_path, tmp_path / "victim.log", apply_delay=0.3)
    victim_pid = str(victim.process.pid)

    def victim_events() -> list[list[str]]:
        return [e for e in read_events(tmp_path) if e[-1] == victim_pid]

    victim.wait_for(lambda: sum(e[0] == "applied" for e in victim_events()) >= 3, 60, "first actions")
    survivor = launch(processes, config, tmp_path, tmp_path / "survivor.log")
    survivor.wait_for(lambda: any(e[0] == "applied" and e[-1] == str(survivor.process.pid)
                                  for e in read_events(tmp_path)), 60, "the survivor's first action")
    victim.wait_for(lambda: victim_events()[-1][0] == "start", 10, "the victim inside an action")
    victim.kill()
    in_flight = victim_events()[-1][1]
    queue = wait_until_done(pg_url, 200, 120, survivor)
    counts = applied(tmp_path)
    assert set(counts) == {f"sign:{p.name}" for p in images}
    assert set(counts.values()) == {1}
    item = queue.item(in_flight)
    assert item is not None and item.state == DONE and item.attempts == 2
    assert item.claimed_by is not None and item.claimed_by.split(":")[1] == str(survivor.process.pid)
    assert_verifies_with_old_and_new(tmp_path, images)
    assert survivor.terminate()[0] == 0


def sqlite_setup(tmp_path: Path, count: int = 1) -> tuple[str, list[Path]]:
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    return url, make_fleet(tmp_path, count)


def job_runs(url: str) -> list[dict[str, Any]]:
    with session_scope(make_engine(url)) as session:
        rows = audit.entries(session, action="service.job")
    return [{"job": r.subject, **json.loads(r.detail)} for r in rows]


def stored_next_runs(url: str) -> dict[str, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT id, next_run_time FROM apscheduler_jobs").all())


CA_ONLY_SOURCE = "lifecycle.service.work:default_source"
JOBS = ["crl", "full-scan", "plan", "publish", "scan"]


@pytest.mark.slow
def test_jobs_missed_during_an_outage_run_once_at_restart(tmp_path: Path,
                                                          processes: list[ServeProcess]) -> None:
    url, _ = sqlite_setup(tmp_path)
    every_second = {f"{job}_interval": "1s" for job in ("scan", "full_scan", "plan", "crl", "publish")}
    config = write_config(tmp_path / "serve.toml", url, poll_interval="200ms", **every_second)
    first = launch(processes, config, tmp_path, tmp_path / "first.log")
    first.wait_for(lambda: Counter(r["job"] for r in job_runs(url)) >= Counter(dict.fromkeys(JOBS, 2)),
                   30, "two runs of every job")
    assert first.terminate()[0] == 0
    missed_from = stored_next_runs(url)
    time.sleep(4.5)  # every job misses four or more runs

    # same intervals: the stored schedule is kept and the missed runs are folded into one
    second = launch(processes, config, tmp_path, tmp_path / "second.log")
    second.wait_for(lambda: len({e["job"] for e in second.events("job.submitted")}) == len(JOBS), 30,
                    "a run of every job")
    assert {e["job"]: (e["how"], e["overdue"]) for e in second.events("job.ensured")} == dict.fromkeys(
        JOBS, ("kept", True))
    for job in JOBS:
        first_run = next(e for e in second.events("job.submitted") if e["job"] == job)
        (scheduled,) = first_run["scheduled"]
        assert datetime.fromisoformat(scheduled).timestamp() - missed_from[job] > 3, (
            "the missed runs were not coalesced into the latest one")
    assert second.terminate()[0] == 0
    time.sleep(1.5)

    # longer intervals at restart: the overdue jobs run once, and then not again for an hour
    hourly = {key: "1h" for key in every_second}
    write_config(tmp_path / "serve.toml", url, poll_interval="200ms", **hourly)
    runs_before = Counter(r["job"] for r in job_runs(url))
    third = launch(processes, config, tmp_path, tmp_path / "third.log")
    third.wait_for(lambda: len({e["job"] for e in third.events("service.job")}) == len(JOBS), 30,
                   "a run of every job")
    time.sleep(2)
    assert third.terminate()[0] == 0
    assert {e["job"]: e["how"] for e in third.events("job.ensured")} == dict.fromkeys(JOBS, "rescheduled")
    assert Counter(r["job"] for r in job_runs(url)) - runs_before == Counter(dict.fromkeys(JOBS, 1))
    assert all(datetime.fromisoformat(e["scheduled"][0]).timestamp() < third.launched
               for e in third.events("job.submitted"))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_finishes_the_current_action_and_exits_0(tmp_path: Path, processes: list[ServeProcess],
                                                         signum: int) -> None:
    url, images = sqlite_setup(tmp_path, 3)
    config = write_config(tmp_path / "serve.toml", url, poll_interval="200ms")
    proc = launch(processes, config, tmp_path, tmp_path / "serve.log", apply_delay=1.5)
    with urllib.request.urlopen(proc.url + "/healthz", timeout=10) as response:
        health = json.load(response)
    assert health["status"] == "ok" and health["workers"] == 1
    proc.wait_for(lambda: any(e[0] == "start" for e in read_events(tmp_path)), 30, "an action")
    code, took = proc.terminate(signum=signum)
    assert code == 0 and took < 10
    counts = WorkQueue(make_engine(url)).counts()
    assert counts[DONE] == 1 and counts[CLAIMED] == 0, counts
    assert [r["clean"] for r in proc.events("service.stopped")] == [True]
    assert_verifies_with_old_and_new(tmp_path, images[:1])  # the first action, by queue order


@pytest.mark.slow
def test_an_action_longer_than_the_shutdown_bound_is_abandoned_and_taken_over(
        tmp_path: Path, processes: list[ServeProcess]) -> None:
    url, images = sqlite_setup(tmp_path, 1)
    config = write_config(tmp_path / "serve.toml", url, poll_interval="200ms", lease="2s",
                          shutdown_timeout="500ms")
    slow = launch(processes, config, tmp_path, tmp_path / "slow.log", apply_delay=30)
    slow.wait_for(lambda: any(e[0] == "start" for e in read_events(tmp_path)), 30, "the action")
    code, took = slow.terminate()
    assert code == 0 and took < 5
    queue = WorkQueue(make_engine(url))
    assert queue.counts()[CLAIMED] == 1
    again = launch(processes, config, tmp_path, tmp_path / "again.log")
    wait_until_done(url, 1, 30, again)
    assert queue.item(f"sign:{images[0].name}").attempts == 2  # type: ignore[union-attr]
    assert again.terminate()[0] == 0
    assert_verifies_with_old_and_new(tmp_path, images)


@pytest.mark.slow
def test_ca_only_source_keeps_the_ca_crls_fresh_and_the_endpoints_answer(
        tmp_path: Path, processes: list[ServeProcess]) -> None:
    url = sqlite_url(tmp_path / "lifecycle.db")
    config = write_config(tmp_path / "serve.toml", url, work_source=CA_ONLY_SOURCE)
    env = {"SIF_LIFECYCLE_PASSPHRASE": "service-test"}
    for args in (["db", "upgrade"], ["ca", "init"]):
        result = CliRunner().invoke(cli, [*args, "--config", str(config)], env=env)
        assert result.exit_code == 0, result.output
    proc = launch(processes, config, tmp_path, tmp_path / "serve.log")
    proc.wait_for(lambda: any(r["job"] == "crl" for r in job_runs(url)), 30, "the CRL job")
    (crl_run,) = [r for r in job_runs(url) if r["job"] == "crl"]
    assert crl_run["result"] == {"published": ["intermediate", "root"]}
    with urllib.request.urlopen(proc.url + "/crl/intermediate.crl", timeout=10) as response:
        crl = x509.load_der_x509_crl(response.read())
    with urllib.request.urlopen(proc.url + "/healthz", timeout=10) as response:
        health = json.load(response)
    assert health["queue"] == {"pending": 0, "claimed": 0, "done": 0, "failed": 0}
    assert crl.next_update_utc is not None and crl.next_update_utc > datetime.now(UTC)
    assert proc.terminate()[0] == 0


@pytest.mark.slow
def test_work_made_due_by_an_action_is_planned_as_soon_as_the_queue_runs_dry(
        tmp_path: Path, processes: list[ServeProcess]) -> None:
    """Plan runs hourly here; the follow-up of a rotation is still applied within seconds."""
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    (tmp_path / "actions.json").write_text(json.dumps([{"key": "rotate:prod", "kind": "rotate"}]))
    config = write_config(tmp_path / "serve.toml", url, poll_interval="200ms", plan_interval="1h")
    proc = launch(processes, config, tmp_path, tmp_path / "serve.log")
    wait_until_done(url, 2, 30, proc)
    assert [e[:2] for e in read_events(tmp_path) if e[0] == "applied"] == [
        ["applied", "rotate:prod"], ["applied", "rotate:prod:follow-up"]]
    time.sleep(1)  # the re-plan after the follow-up finds nothing new: no loop
    plans = [r for r in job_runs(url) if r["job"] == "plan"]
    assert [r["result"]["queued"] for r in plans] == [1, 1, 0]
    assert proc.terminate()[0] == 0
