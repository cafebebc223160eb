"""Operations against real peers: Debian's prometheus scrapes a running serve and fires our alert
rules, promtool checks and unit-tests config/alerts.yml, Debian's prometheus-alertmanager takes
our notifications, and e-mail arrives at an aiosmtpd server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.config import NotifyTable
from lifecycle.pki import keys
from lifecycle.service.conditions import RULES, Finding, RuleName
from lifecycle.service.notify import Notifier
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from tests.conftest import REPO, require_tool
from tests.service.harness import ServeProcess, launch, stop_all, write_config

PASSPHRASE = b"service-test"
pytestmark = pytest.mark.interop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    stop_all(started)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def test_promtool_checks_and_unit_tests_the_shipped_rules() -> None:
    promtool = require_tool("promtool")
    rules = REPO / "config" / "alerts.yml"
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(REPO / "tests" / "interop" / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_shipped_rules_are_the_generator_output_for_the_example_config() -> None:
    example = REPO / "config" / "sif-lifecycle.example.toml"
    result = CliRunner().invoke(cli, ["alerts", "--config", str(example)])
    assert result.exit_code == 0, result.output
    assert result.output == (REPO / "config" / "alerts.yml").read_text(), \
        "regenerate: sif-lifecycle alerts --config config/sif-lifecycle.example.toml -o config/alerts.yml"


@pytest.mark.slow
def test_prometheus_scrapes_serve_and_fires_the_crl_alert_of_a_crl_let_go_stale(
        tmp_path: Path, processes: list[ServeProcess], children: list[subprocess.Popen[bytes]]) -> None:
    prometheus = require_tool("prometheus")
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    # the CA was set up six days ago (simulated clock) with 7-day CRLs, and nothing refreshed them
    past = datetime.now(UTC) - timedelta(days=6)
    engine = make_engine(url)
    ca = CaService(KeyService(engine, tmp_path / "keys", clock=lambda: past), PASSPHRASE,
                   CaSettings(crl_lifetime=timedelta(days=7)))
    ca.init(root_algorithm=keys.KeyAlgorithm.P256, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    engine.dispose()
    config = write_config(tmp_path / "serve.toml", url)
    with config.open("a") as out:
        out.write('[ca]\ncrl_lifetime_days = 7\n[alerts]\npending = "1s"\n')
    rules = tmp_path / "rules.yml"
    result = CliRunner().invoke(cli, ["alerts", "--config", str(config), "-o", str(rules)])
    assert result.exit_code == 0, result.output
    serve = launch(processes, config, tmp_path, tmp_path / "serve.log")
    target = urllib.parse.urlsplit(serve.url).netloc
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "sif-lifecycle", "static_configs": [{"targets": [target]}]}]}))
    log = (tmp_path / "prometheus.log").open("wb")
    children.append(subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT))
    api = f"http://127.0.0.1:{port}/api/v1"

    def series(query: str) -> list[dict[str, Any]]:
        doc = get_json(f"{api}/query?query={urllib.parse.quote(query)}")
        return list(doc["data"]["result"])

    found = wait(lambda: series("sif_lifecycle_crl_next_update_timestamp_seconds"), 30,
                 "our series in Prometheus")
    by_issuer = {s["metric"]["issuer"]: float(s["value"][1]) for s in found}
    assert set(by_issuer) == {"root", "intermediate"}
    assert abs(by_issuer["intermediate"] - (past + timedelta(days=7)).timestamp()) < 2
    assert series('sif_lifecycle_certificate_expiry_timestamp_seconds{role="root"}')

    def firing() -> list[dict[str, Any]]:
        alerts = get_json(f"{api}/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == RuleName.CRL_STALE.value
                and a["state"] == "firing"]

    fired = wait(firing, 30, "the CRL alert to fire")
    assert {a["labels"]["issuer"] for a in fired} == {"root", "intermediate"}
    assert fired[0]["labels"]["severity"] == "critical"
    # the same condition makes /healthz degraded and /readyz 503
    health = get_json(serve.url + "/healthz")
    assert health["status"] == "degraded"
    assert any("intermediate CRL" in reason for reason in health["reasons"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(serve.url + "/readyz", timeout=5)
    assert refused.value.code == 503


FINDING = Finding(RuleName.TAMPERED_IMAGES, "apps", "2 tampered image(s) in set apps", "apps")


@pytest.mark.slow
def test_alertmanager_receives_and_lists_our_notifications(
        tmp_path: Path, children: list[subprocess.Popen[bytes]]) -> None:
    alertmanager = require_tool("prometheus-alertmanager")
    port, cluster = free_port(), free_port()
    (tmp_path / "am.yml").write_text(yaml.safe_dump({"route": {"receiver": "none"},
                                                     "receivers": [{"name": "none"}]}))
    log = (tmp_path / "am.log").open("wb")
    children.append(subprocess.Popen(
        [alertmanager, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster}"],
        stdout=log, stderr=subprocess.STDOUT))
    base = f"http://127.0.0.1:{port}"
    wait(lambda: get_json(f"{base}/api/v2/status"), 30, "alertmanager to start")
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    engine = make_engine(url)
    notifier = Notifier(engine, NotifyTable(alertmanager_url=base))
    now = datetime.now(UTC)
    assert notifier.run([FINDING], now)["alertmanager"] == 1
    listed = wait(lambda: get_json(f"{base}/api/v2/alerts"), 10, "the alert to be listed")
    (alert,) = listed
    assert alert["labels"]["alertname"] == RuleName.TAMPERED_IMAGES.value
    assert alert["labels"]["image_set"] == "apps"
    assert alert["annotations"]["summary"] == FINDING.summary
    assert alert["annotations"]["action"] == RULES[RuleName.TAMPERED_IMAGES].action
    # the condition is gone: the next run resolves it
    notifier.run([], datetime.now(UTC))
    wait(lambda: get_json(f"{base}/api/v2/alerts") == [], 10, "the resolved alert to leave the list")
    engine.dispose()


def test_mail_arrives_at_an_smtp_server_with_the_set_and_reason_in_the_subject(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):  # type: ignore[misc]
        def handle_message(self, message: Any) -> None:
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        url = sqlite_url(tmp_path / "lifecycle.db")
        migrate.upgrade(url)
        engine = make_engine(url)
        settings = NotifyTable(smtp_host="127.0.0.1", smtp_port=controller.port,
                               smtp_from="lifecycle@example.org", smtp_to=["ops@example.org"])
        now = datetime.now(UTC)
        assert Notifier(engine, settings).run([FINDING], now)["sent"] == 1
        # a second instance (another Notifier on the same database) sends nothing new
        assert Notifier(engine, settings).run([FINDING], now)["sent"] == 0
        wait(lambda: received, 10, "the mail")
        (mail,) = received
        subject = str(mail["Subject"]).replace("\r\n", "")  # unfold (RFC 5322 2.2.3)
        assert "(image set apps)" in subject
        assert subject.endswith(": 2 tampered image(s) in set apps")
        assert mail["To"] == "ops@example.org"
        engine.dispose()
    finally:
        controller.stop()
