"""Options and plumbing shared by the ``key``, ``ca``, ``db`` and ``serve`` commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from lifecycle.errors import ConfigError, KeyMaterialError
from lifecycle.pki.files import write_atomic
from lifecycle.service.config import Config, load_config
from lifecycle.store.ca_service import CaService
from lifecycle.store.db import make_engine
from lifecycle.store.key_service import KeyService

ENV_PASSPHRASE = "SIF_LIFECYCLE_PASSPHRASE"  # noqa: S105 - the variable name, not a secret
F = TypeVar("F", bound=Callable[..., Any])


class UtcTime(click.ParamType):  # type: ignore[type-arg]
    """ISO 8601 time; a value without a zone (or a bare date) is taken as UTC."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2029-01-01T12:00:00Z)", param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.utcoffset() is None else parsed.astimezone(UTC)


def config_option(func: F) -> F:
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
        envvar="SIF_LIFECYCLE_CONFIG", help="TOML config file (env SIF_LIFECYCLE_CONFIG).",
    )(func)


def passphrase_option(func: F) -> F:
    return click.option(
        "--passphrase-file", type=click.Path(path_type=Path, dir_okay=False),
        help=f"File holding the key store passphrase (else env {ENV_PASSPHRASE}, else a prompt).",
    )(func)


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    """From --passphrase-file, $SIF_LIFECYCLE_PASSPHRASE or a terminal prompt; never logged."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise KeyMaterialError(f"cannot read passphrase file: {exc.strerror}",
                                   path=passphrase_file) from exc
    elif os.environ.get(ENV_PASSPHRASE):
        text = os.environ[ENV_PASSPHRASE]
    elif sys.stdin.isatty():
        text = click.prompt("Key store passphrase", hide_input=True,
                            confirmation_prompt=confirm)
    else:
        raise KeyMaterialError("no passphrase given",
                               hint=f"use --passphrase-file or set {ENV_PASSPHRASE}")
    if not text:
        raise KeyMaterialError("the passphrase is empty", path=passphrase_file)
    return text.encode()


def open_config(config_path: Path | None) -> Config:
    if config_path is not None and not config_path.is_file():
        raise ConfigError("config file does not exist", path=config_path)
    return load_config(config_path)


def key_service(config: Config) -> KeyService:
    return KeyService(make_engine(config.database_url), config.key_directory)


def ca_service(config: Config, passphrase: bytes) -> CaService:
    return CaService(key_service(config), passphrase, config.ca)


def emit(data: bytes, output: Path | None, *, mode: int = 0o644) -> None:
    """Write to ``output`` atomically, or to stdout."""
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        write_atomic(output, data, mode=mode)
        click.echo(f"wrote {output}", err=True)
