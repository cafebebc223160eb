"""The [serve] settings and the start-up checks of ``serve`` (bad config, old schema, bad plug-in)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.config import DEFAULT_WORK_SOURCE, load_config, parse_duration
from lifecycle.errors import ConfigError, LifecycleError
from lifecycle.store import migrate
from lifecycle.store.db import sqlite_url


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h30m", 5400),
                                               ("7d", 604800), ("250ms", 0.25), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "5 minutes", "0s", "1h-5m", "-1h"])
def test_bad_durations_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match="scan_interval"):
        parse_duration(text, key="scan_interval")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lifecycle.toml"
    path.write_text(body)
    return path


def test_serve_defaults_and_overrides(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, "")).serve
    assert (defaults.scan_interval, defaults.plan_interval, defaults.crl_interval) == (
        timedelta(minutes=15), timedelta(hours=1), timedelta(hours=1))
    assert (defaults.workers, defaults.lease, defaults.work_source) == (
        1, timedelta(minutes=5), DEFAULT_WORK_SOURCE)
    serve = load_config(write(tmp_path, '[serve]\nplan_interval = "10m"\nworkers = 4\n'
                                        'lease = "30s"\nwork_source = "my.module:factory"\n')).serve
    assert (serve.plan_interval, serve.workers, serve.lease, serve.work_source) == (
        timedelta(minutes=10), 4, timedelta(seconds=30), "my.module:factory")


@pytest.mark.parametrize(("body", "message"), [
    ('plan_intervall = "1h"', r"\[serve\]\.plan_intervall: unknown key \(did you mean 'plan_interval'\?\)"),
    ('plan_interval = 60', "plan_interval: must be a duration string"),
    ('workers = 0', "workers: must be a whole number from 1"),
    ('lease = "1s"', "lease: must be at least 2s"),
    ('work_source = "nocolon"', "not MODULE:ATTRIBUTE"),
    ('crl_interval = "soon"', "crl_interval: 'soon' is not a duration"),
])
def test_bad_serve_settings_name_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, f"[serve]\n{body}\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def run_serve(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)],
                                env={"SIF_LIFECYCLE_PASSPHRASE": "config test passphrase"})
    return result.exit_code, result.output


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    code, output = run_serve(write(tmp_path, ""))
    assert code == 2
    assert "the database does not exist" in output and "sif-lifecycle db upgrade" in output


def test_serve_refuses_a_work_source_it_cannot_load(tmp_path: Path) -> None:
    migrate.upgrade(sqlite_url(tmp_path / "lifecycle.db"))
    code, output = run_serve(write(tmp_path, '[serve]\nwork_source = "no.such.module:source"\n'
                                             'listen = "127.0.0.1:0"\n'))
    assert code == 2
    assert "work_source 'no.such.module:source' cannot be loaded" in output


def test_http_limits_and_append_token_settings(tmp_path: Path) -> None:
    from lifecycle.service.transparency import http_log_client

    defaults = load_config(write(tmp_path, ""))
    assert (defaults.serve.max_connections, defaults.serve.idle_timeout,
            defaults.serve.max_request_bytes) == (100, timedelta(seconds=30), 1024 * 1024)
    config = load_config(write(tmp_path, '[serve]\nmax_connections = 7\nidle_timeout = "2s"\n'
                                         'max_request_bytes = 4096\n[tlog]\norigin = "x.org/log"\n'
                                         'append_token_file = "token"\n'))
    assert (config.serve.max_connections, config.serve.idle_timeout,
            config.serve.max_request_bytes) == (7, timedelta(seconds=2), 4096)
    assert config.tlog is not None and config.tlog.append_token_file == tmp_path / "token"
    with pytest.raises(ConfigError, match=r"max_connections: must be a whole number from 1 to"):
        load_config(write(tmp_path, "[serve]\nmax_connections = 0\n"))
    (tmp_path / "token").write_text("short\n")
    with pytest.raises(LifecycleError, match="at least 16"):
        http_log_client("http://127.0.0.1:9", config.tlog)
    (tmp_path / "token").write_text("0123456789abcdef0123\n")
    assert http_log_client("http://127.0.0.1:9", config.tlog).token == "0123456789abcdef0123"
