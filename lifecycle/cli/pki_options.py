"""Options and plumbing shared by the ``key``, ``ca``, ``db`` and ``serve`` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lifecycle.config import Config, load_config
from lifecycle.errors import ConfigError
from lifecycle.pki.files import write_atomic

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported when a command opens it
    from lifecycle.store.ca_service import CaService
    from lifecycle.store.key_service import KeyService

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
        envvar="SIF_LIFECYCLE_CONFIG", help="TOML config file (env SIF_LIFECYCLE_CONFIG).",
    )(func)


def open_config(config_path: Path | None) -> Config:
    if config_path is not None and not config_path.exists():
        raise ConfigError("config file does not exist", path=config_path)
    return load_config(config_path)


def key_service(config: Config) -> KeyService:
    from lifecycle.store.key_service import KeyService
    from lifecycle.store.migrate import open_store

    return KeyService(open_store(config.database_url), config.key_directory)


def ca_service(config: Config, passphrase: bytes) -> CaService:
    from lifecycle.store.ca_service import CaService

    return CaService(key_service(config), passphrase, config.ca)


def emit(data: bytes, output: Path | None, *, mode: int = 0o644) -> None:
    """Write to ``output`` atomically, or to stdout."""
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        write_atomic(output, data, mode=mode)
        click.echo(f"wrote {output}", err=True)
