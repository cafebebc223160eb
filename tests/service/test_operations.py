"""Operations: what /metrics and /healthz say about a real fleet, recovery of failed actions with
``actions retry`` (applied once, SQLite and PostgreSQL), re-queueing failed actions whose plan
changed, and notifications sent once across instances, retried with backoff and audited."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lifecycle.cli.main import cli
from lifecycle.config import Config, ImageSetPolicy, NotifyTable, ServeSettings
from lifecycle.inventory.scan import scan
from lifecycle.service.conditions import RuleName, findings
from lifecycle.service.http import start_http
from lifecycle.service.metrics import METRICS, MetricsEndpoint, StoreCollector, reference
from lifecycle.service.notify import Notifier
from lifecycle.service.runner import Service
from lifecycle.service.workers import WorkerPool
from lifecycle.store import audit, notifications
from lifecycle.store.ca_service import CaSettings
from lifecycle.store.db import make_engine
from lifecycle.store.queue import DONE, FAILED, PENDING, WorkQueue
from tests.conftest import REPO
from tests.inventory.tamper import resign_foreign
from tests.service.harness import write_config
from tests.strategies.conftest import Fleet, make_fleet

APPS = ImageSetPolicy("apps", ("apps-*.sif",), "resign")
NOW = datetime(2027, 3, 1, tzinfo=UTC)


def fleet_config(fleet: Fleet, **serve: Any) -> Config:
    return Config(fleet.url, fleet.root / "keys", CaSettings(), policies=fleet.policies,
                  serve=ServeSettings(**serve))


def scrape(collector: StoreCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = MetricsEndpoint(collector)().decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_metrics_health_and_notification_of_a_fleet_with_a_tampered_image(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, hook: tuple[str, type[Hook]]) -> None:
    fleet = make_fleet(tmp_path, [APPS])
    fleet.run()
    [image, other] = fleet.signed_images("apps", 2)
    scan(fleet.engine, [str(image), str(other)], fleet.now, full=True, policies=fleet.policies)
    resign_foreign(image)
    with caplog.at_level(logging.WARNING, logger="lifecycle.inventory.scan"):
        scan(fleet.engine, [str(image)], fleet.now, full=True, policies=fleet.policies)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(image) in warning.getMessage() and "not a signer of image set apps" in warning.getMessage()

    config = fleet_config(fleet)
    collector = StoreCollector(fleet.engine, config, clock=lambda: fleet.now)
    series = scrape(collector)
    assert {spec.name.removesuffix("_total") for spec in METRICS} >= set(series) - {""}
    images = {(labels["image_set"], labels["status"]): value
              for labels, value in series["sif_lifecycle_images"]}
    assert images[("apps", "tampered")] == 1 and images[("apps", "present")] == 1
    leafs = [(labels, value) for labels, value in series["sif_lifecycle_certificate_expiry_timestamp_seconds"]
             if labels["role"] == "leaf"]
    with fleet.engine.connect():
        state = fleet.state()
    current = {c.serial: c.not_after for c in state.certificates if not c.revoked and not c.superseded}
    assert leafs and all(labels["image_set"] == "apps" and value == current[labels["serial"]].timestamp()
                         for labels, value in leafs)
    assert {labels["issuer"] for labels, _ in series["sif_lifecycle_crl_next_update_timestamp_seconds"]} == {
        "root", "intermediate"}
    forecast = {labels["tool"]: value for labels, value in
                series["sif_lifecycle_image_set_verifiable_until_timestamp_seconds"]}
    assert forecast["stock"] == min(v for _, v in leafs) and forecast["sif-lifecycle"] == float("inf")

    found = findings(collector.snapshot(), config)
    assert [f.rule for f in found] == [RuleName.TAMPERED_IMAGES]
    assert found[0].summary == f"1 tampered image(s) in set apps: {image}"
    url, handler = hook
    config = replace(config, notify=NotifyTable(webhooks=[url]))
    service = Service(fleet.engine, _Idle(), config.serve, operations=_operations(fleet, config),
                      clock=lambda: fleet.now)
    health = service.health()
    assert health["status"] == "degraded" and health["reasons"] == [found[0].summary]
    assert "notify" in service.specs  # the notify job runs because a channel is configured
    service.run_job("notify", fleet.now)
    fleet.now += timedelta(minutes=5)
    service.run_job("notify", fleet.now)  # unchanged: not sent again
    assert [(b["alertname"], b["image_set"], b["summary"]) for b in handler.received] == [
        (RuleName.TAMPERED_IMAGES, "apps", found[0].summary)]
    running = start_http(None, metrics=MetricsEndpoint(collector), health=service.health)
    try:
        with urllib.request.urlopen(running.url + "/metrics", timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert b'sif_lifecycle_images{image_set="apps",status="tampered"} 1.0' in answer.read()
        with urllib.request.urlopen(running.url + "/healthz", timeout=10) as answer:
            assert json.load(answer)["status"] == "degraded"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(running.url + "/readyz", timeout=10)
        assert refused.value.code == 503
    finally:
        running.stop()


def _operations(fleet: Fleet, config: Config) -> Any:
    from lifecycle.service.operations import Operations

    return Operations(fleet.engine, config, clock=lambda: fleet.now)


class _Idle:
    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        return {}

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        return []

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        return {}

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        return {}

    def publish(self, now: datetime) -> Mapping[str, Any]:
        return {}


class Flaky(_Idle):
    """Fails every apply until ``fixed``; counts the applies that succeeded."""

    def __init__(self) -> None:
        self.fixed = False
        self.applied: list[str] = []
        self._lock = threading.Lock()

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        if not self.fixed:
            raise RuntimeError("the key directory is not writable")
        with self._lock:
            self.applied.append(str(action["key"]))
        return {"status": "done"}


def action(key: str = "reissue:01ab", reason: str = "expires soon") -> dict[str, Any]:
    return {"key": key, "kind": "reissue", "subject": key.split(":")[1], "due": NOW.isoformat(),
            "not_before": NOW.isoformat(), "reason": reason, "image_set": "apps"}


def _pool(queue: WorkQueue, source: Flaky, name: str) -> WorkerPool:
    return WorkerPool(queue, source, instance=name, size=1, lease=timedelta(seconds=30),
                      poll=timedelta(seconds=1), clock=lambda: NOW)


def test_a_failed_action_is_applied_exactly_once_after_actions_retry(
        tmp_path: Path, db_url: str, engine: Engine) -> None:
    queue = WorkQueue(engine, max_attempts=2, retry_delay=timedelta(0))
    source = Flaky()
    queue.enqueue([action()], NOW)
    pool = _pool(queue, source, "a")
    while (item := queue.item("reissue:01ab")) is not None and item.state != FAILED:
        assert pool.work_one("a/0")
    assert item is not None and item.attempts == 2
    config = write_config(tmp_path / "ops.toml", db_url)
    listed = CliRunner().invoke(cli, ["actions", "--state", "failed", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert f"#{item.id} failed" in listed.output and "attempts=2" in listed.output
    assert "last error: RuntimeError: the key directory is not writable" in listed.output
    assert "why: expires soon" in listed.output

    source.fixed = True  # the cause is fixed; retried from two shells at once, it queues once
    results = [CliRunner().invoke(cli, ["actions", "retry", str(item.id), "--config", str(config)])
               for _ in range(2)]
    assert results[0].exit_code == 0 and "queued again: reissue:01ab" in results[0].output
    assert results[1].exit_code == 2 and "no failed action with ID" in results[1].output
    workers = [_pool(queue, source, name) for name in ("a", "b")]
    threads = [threading.Thread(target=lambda p=p: [p.work_one(f"{p.instance}/0") for _ in range(3)])
               for p in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.applied == ["reissue:01ab"]
    assert queue.item("reissue:01ab").state == DONE  # type: ignore[union-attr]
    with Session(engine) as session:
        assert [r.subject for r in audit.entries(session, action="service.action.retried")] == [
            "reissue:01ab"]


def test_the_plan_requeues_a_failed_action_only_when_its_plan_changed(engine: Engine) -> None:
    queue = WorkQueue(engine, max_attempts=1, retry_delay=timedelta(0))
    source = Flaky()
    queue.enqueue([action()], NOW)
    assert _pool(queue, source, "a").work_one("a/0")
    assert queue.item("reissue:01ab").state == FAILED  # type: ignore[union-attr]
    assert queue.enqueue([action()], NOW) == 0  # the same plan: it stays failed
    assert queue.item("reissue:01ab").state == FAILED  # type: ignore[union-attr]
    assert queue.enqueue([action(reason="the CA was fixed; expires soon")], NOW) == 1
    item = queue.item("reissue:01ab")
    assert item is not None and item.state == PENDING and item.attempts == 0


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    failures: list[int]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.failures:
            self.failures.pop()
            self.send_response(500)
        else:
            self.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("H", (Hook,), {"received": [], "failures": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()


def _finding(summary: str) -> Any:
    from lifecycle.service.conditions import Finding

    return Finding(RuleName.ACTIONS_FAILED, "queue", summary)


@pytest.mark.postgres
def test_two_instances_on_postgres_never_both_send_a_notification(
        pg_url: str, hook: tuple[str, type[Hook]]) -> None:
    from lifecycle.store import migrate

    migrate.upgrade(pg_url)
    url, handler = hook
    engines = [make_engine(pg_url) for _ in range(2)]
    settings = NotifyTable(webhooks=[url])
    found = [_finding("1 failed action(s)")]
    barrier = threading.Barrier(2)

    def instance(engine: Engine) -> None:
        barrier.wait()
        Notifier(engine, settings).run(found, NOW)

    threads = [threading.Thread(target=instance, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [b["summary"] for b in handler.received] == ["1 failed action(s)"]
    for engine in engines:  # again, unchanged: nothing; changed: once more
        Notifier(engine, settings).run(found, NOW + timedelta(minutes=5))
    Notifier(engines[1], settings).run([_finding("2 failed action(s)")], NOW + timedelta(minutes=10))
    assert [b["summary"] for b in handler.received] == ["1 failed action(s)", "2 failed action(s)"]
    for engine in engines:
        engine.dispose()


def test_a_failed_delivery_is_retried_with_a_doubling_delay_and_audited(
        engine: Engine, hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    handler.failures.extend([500, 500])
    notifier = Notifier(engine, NotifyTable(webhooks=[url], retry_delay="30s"))  # type: ignore[arg-type]
    found = [_finding("1 failed action(s)")]
    assert notifier.run(found, NOW)["retry"] == 1
    assert notifier.run(found, NOW + timedelta(seconds=29))["retry"] == 0  # not due yet
    assert notifier.run(found, NOW + timedelta(seconds=30))["retry"] == 1  # second attempt fails
    assert notifier.run(found, NOW + timedelta(seconds=89))["sent"] == 0  # 30s, then 60s
    assert notifier.run(found, NOW + timedelta(seconds=90))["sent"] == 1
    assert len(handler.received) == 1 and handler.received[0]["alertname"] == RuleName.ACTIONS_FAILED
    [row] = notifications.sent(engine)
    assert row.status == "sent" and row.attempts == 3
    with Session(engine) as session:
        actions = [r.action for r in audit.entries(session) if r.action.startswith("notify.")]
    assert actions == ["notify.retry", "notify.retry", "notify.sent"]


def test_the_metrics_and_rules_references_in_the_docs_are_current() -> None:
    from lifecycle.service.conditions import reference as rules_reference

    text = (REPO / "docs" / "operations.md").read_text()
    assert reference() in text, "docs/operations.md: paste lifecycle.service.metrics.reference() output"
    assert rules_reference() in text, \
        "docs/operations.md: paste lifecycle.service.conditions.reference() output"
