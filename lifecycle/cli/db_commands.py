"""``sif-lifecycle db``: schema migrations of the store."""

from __future__ import annotations

from pathlib import Path

import click

from lifecycle.cli.pki_options import config_option, open_config
from lifecycle.store import migrate


@click.group()
def db() -> None:
    """Create and migrate the database (SQLite file or PostgreSQL).

    \b
    Example:
      sif-lifecycle db upgrade --config config/sif-lifecycle.example.toml
    """


@db.command()
@config_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(config_path: Path | None, revision: str) -> None:
    """Migrate the schema up to REVISION.

    \b
    Example:
      sif-lifecycle db upgrade --config lifecycle.toml
    """
    migrate.upgrade(open_config(config_path).database_url, revision)
    click.echo(f"database at {revision}")


@db.command()
@config_option
@click.option("--revision", default="-1", show_default=True,
              help="Target revision ('base' removes every table).")
def downgrade(config_path: Path | None, revision: str) -> None:
    """Migrate the schema down to REVISION.

    \b
    Example:
      sif-lifecycle db downgrade --revision base --config lifecycle.toml
    """
    migrate.downgrade(open_config(config_path).database_url, revision)
    click.echo(f"database at {revision}")


@db.command()
@config_option
def current(config_path: Path | None) -> None:
    """Print the schema revision of the database.

    \b
    Example:
      sif-lifecycle db current --config lifecycle.toml
    """
    click.echo(migrate.current(open_config(config_path).database_url) or "empty")
