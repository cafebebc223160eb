"""Alembic, configured in code so ``sif-lifecycle db upgrade`` needs no alembic.ini on disk.

The scripts live in the top-level ``migrations/`` directory of the source tree (an editable or
source install); ``SIF_LIFECYCLE_MIGRATIONS`` points elsewhere when packaged differently.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from lifecycle.errors import StoreError
from lifecycle.store.db import make_engine


def migrations_dir() -> Path:
    override = os.environ.get("SIF_LIFECYCLE_MIGRATIONS")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "migrations"
    if not (path / "env.py").is_file():
        raise StoreError("migration scripts not found", path=path,
                         hint="set SIF_LIFECYCLE_MIGRATIONS to the migrations/ directory")
    return path


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # Passed as an attribute, not an option: ConfigParser would choke on '%' in passwords.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    _run(command.upgrade, url, revision)


def downgrade(url: str, revision: str = "-1") -> None:
    _run(command.downgrade, url, revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the migration scripts define."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def open_migrated(url: str) -> Engine:
    """An engine on a database brought up to the newest schema (idempotent)."""
    upgrade(url)
    return make_engine(url)


def _run(action: object, url: str, revision: str) -> None:
    try:
        action(alembic_config(url), revision)  # type: ignore[operator]
    except (CommandError, SQLAlchemyError) as exc:
        raise StoreError(f"migration to {revision} failed: {str(exc).splitlines()[0]}") from exc
