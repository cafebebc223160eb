"""The TOML configuration: database, key directory, CA URLs, listen address and image-set policies.

Relative paths are resolved against the config file's directory, so a config and its data can
move together. Without a file, everything lives under ``~/.local/share/sif-lifecycle``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError
from lifecycle.pki.ca import CaUrls
from lifecycle.store.ca_service import CaSettings
from lifecycle.store.db import sqlite_url
from lifecycle.strategies.policy import Policies, parse_policies

ENV_CONFIG = "SIF_LIFECYCLE_CONFIG"


DEFAULT_WORK_SOURCE = "lifecycle.service.planner_source:planner_source"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class ServeSettings:
    """The ``[serve]`` table: how often each job runs and how work is shared (see docs/serve.md)."""

    scan_interval: timedelta = timedelta(minutes=15)
    full_scan_interval: timedelta = timedelta(hours=24)
    plan_interval: timedelta = timedelta(hours=1)
    crl_interval: timedelta = timedelta(hours=1)
    workers: int = 1
    lease: timedelta = timedelta(minutes=5)
    poll_interval: timedelta = timedelta(seconds=10)
    max_attempts: int = 5
    shutdown_timeout: timedelta = timedelta(seconds=30)
    work_source: str = DEFAULT_WORK_SOURCE
    publish_interval: timedelta = timedelta(hours=1)
    report_directory: Path | None = None
    """Where the publish job writes report.html/.md/.json (off when unset)."""
    bundle_outbox: Path | None = None
    """Where the publish job exports verification bundles when their content changed (off when unset)."""
    bundle_keep: int = 5
    max_connections: int = 100
    """Open HTTP connections at most; further clients wait in the listen backlog."""
    idle_timeout: timedelta = timedelta(seconds=30)
    """An HTTP connection silent for this long, or whose request has not arrived by then, is closed."""
    max_request_bytes: int = 1024 * 1024
    """Largest HTTP request body; larger ones get 413."""


@dataclass(frozen=True)
class TlogSettings:
    """``[tlog]``: the transparency log kept in the store's own database.

    Ephemeral image sets sign through it; the ``tlog`` commands use it as their default log.
    ``url`` (a log served by another instance's ``serve``) makes signing go over HTTP instead.
    """

    database_url: str
    origin: str
    key_file: Path
    url: str | None = None
    append_token_file: Path | None = None
    """The bearer token for HTTP appends: the server requires it, the client sends it (absent on
    the server: appends over HTTP are refused)."""


@dataclass(frozen=True)
class Config:
    database_url: str
    key_directory: Path
    ca: CaSettings
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    policies: Policies = field(default_factory=Policies)
    serve: ServeSettings = field(default_factory=ServeSettings)
    tlog: TlogSettings | None = None


def parse_duration(text: str, *, path: Path | str = "duration", key: str = "duration") -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"``, ``"250ms"``: a positive duration."""
    parts = _DURATION.findall(text.replace(" ", ""))
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ConfigError(f"{key} = {text!r} is not a duration (e.g. \"90s\", \"15m\", \"1h\", \"7d\")",
                          path=path)
    value = timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))
    if value <= timedelta(0):
        raise ConfigError(f"{key} = {text!r} must be longer than zero", path=path)
    return value


_PATH_SETTINGS = ("report_directory", "bundle_outbox")


def _serve_settings(table: dict[str, Any], path: Path, base: Path) -> ServeSettings:
    defaults = ServeSettings()
    known = {*ServeSettings.__dataclass_fields__, "listen"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[serve] has unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})",
                          path=path)
    values: dict[str, Any] = {}
    for name, default in vars(defaults).items():
        if name in _PATH_SETTINGS:
            text = _get(table, name, str, None, path)
            if text:
                values[name] = base / text
        elif isinstance(default, timedelta):
            text = _get(table, name, str, None, path)
            if text is not None:
                values[name] = parse_duration(text, path=path, key=name)
        elif isinstance(default, int):
            number = _get(table, name, int, default, path)
            if number < 1:
                raise ConfigError(f"{name} must be at least 1, not {number}", path=path)
            values[name] = number
        else:
            ref = _get(table, name, str, default, path)
            if ":" not in ref:
                raise ConfigError(f"{name} = {ref!r} is not MODULE:ATTRIBUTE", path=path)
            values[name] = ref
    settings = ServeSettings(**values)
    if settings.lease < timedelta(seconds=2):
        raise ConfigError("lease must be at least 2s (workers renew it every third of it)", path=path)
    return settings


def _section(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table", path=path)
    return value


def _get(table: dict[str, Any], key: str, kind: type, default: Any, path: Path) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{key} must be a {kind.__name__}, not {value!r}", path=path)
    return value


def parse_listen(text: str, *, path: Path | str = "listen") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"listen address {text!r} is not HOST:PORT", path=path)
    return host.strip("[]") or "127.0.0.1", int(port)


def load_config(path: Path | None = None) -> Config:
    """Read ``path`` (or $SIF_LIFECYCLE_CONFIG); no file at all means the defaults."""
    if path is None and os.environ.get(ENV_CONFIG):
        path = Path(os.environ[ENV_CONFIG])
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", path=path) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from exc
        base = path.resolve().parent
    else:
        path = Path("<defaults>")
        base = Path.home() / ".local" / "share" / "sif-lifecycle"
    database = _section(doc, "database", path)
    url = _get(database, "url", str, None, path)
    if url is None:
        url = sqlite_url(base / _get(database, "path", str, "lifecycle.db", path))
    key_dir = base / _get(_section(doc, "keys", path), "directory", str, "keys", path)
    serve = _section(doc, "serve", path)
    host, port = parse_listen(_get(serve, "listen", str, "127.0.0.1:8080", path), path=path)
    ca = _section(doc, "ca", path)
    public = _get(ca, "public_url", str, f"http://{host}:{port}", path).rstrip("/")
    urls = CaUrls(
        crl_url=_get(ca, "crl_url", str, f"{public}/crl/intermediate.crl", path),
        root_crl_url=_get(ca, "root_crl_url", str, f"{public}/crl/root.crl", path),
        ocsp_url=_get(ca, "ocsp_url", str, f"{public}/ocsp", path),
        ca_issuers_url=_get(ca, "ca_issuers_url", str, f"{public}/ca/intermediate.crt", path),
    )
    settings = CaSettings(
        urls=urls,
        organization=_get(ca, "organization", str, None, path),
        crl_lifetime=timedelta(days=_get(ca, "crl_lifetime_days", int, 7, path)),
        ocsp_response_lifetime=timedelta(
            hours=_get(ca, "ocsp_response_lifetime_hours", int, 12, path)),
    )
    policies = parse_policies(doc.get("image_sets"), path, base)
    return Config(url, key_dir, settings, host, port, policies, _serve_settings(serve, path, base),
                  _tlog(doc, url, base, path))


def _tlog(doc: dict[str, Any], database_url: str, base: Path, path: Path) -> TlogSettings | None:
    if "tlog" not in doc:
        return None
    table = _section(doc, "tlog", path)
    unknown = sorted(set(table) - {"origin", "key_file", "url", "append_token_file"})
    if unknown:
        raise ConfigError(f"[tlog] {unknown[0]}: unknown key (known: append_token_file, key_file, "
                          "origin, url)", path=path)
    origin = _get(table, "origin", str, None, path)
    if not origin or any(c.isspace() for c in origin):
        raise ConfigError("[tlog] origin: required, a log name without spaces (e.g. "
                          "\"example.org/sif-lifecycle/log\")", path=path)
    key_file = base / _get(table, "key_file", str, "tlog-key.json", path)
    token = _get(table, "append_token_file", str, None, path)
    return TlogSettings(database_url, origin, key_file, _get(table, "url", str, None, path),
                        base / token if token else None)
