"""Alembic, configured in code so ``sif-lifecycle db upgrade`` needs no alembic.ini on disk.

The scripts live in the top-level ``migrations/`` directory of the source tree (an editable or
source install); ``SIF_LIFECYCLE_MIGRATIONS`` points elsewhere when packaged differently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lifecycle.errors import StoreError
from lifecycle.store.db import (
    UPGRADE_HINT,
    connection_error,
    database_error,
    display_url,
    make_engine,
    sqlite_file,
)

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


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
    current(url)  # a database that cannot be reached is reported as such, not as a failed migration
    _run(command.upgrade, url, revision)


def downgrade(url: str, revision: str = "-1") -> None:
    _require_file(url)
    if current(url) is None:
        raise StoreError("the database has no schema to downgrade", path=display_url(url),
                         hint="check the [database] settings of the config")
    _run(command.downgrade, url, revision)


def current(url: str) -> str | None:
    """The schema revision of the database, None when it has none (a SQLite file is not created)."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    engine = make_engine(url)
    try:
        return _revision(engine)
    finally:
        engine.dispose()


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head() -> str:
    """The newest revision the migration scripts define."""
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def open_migrated(url: str) -> Engine:
    """An engine on a database brought up to the newest schema (idempotent)."""
    upgrade(url)
    return make_engine(url)


def open_store(url: str) -> Engine:
    """An engine on an existing database at the schema this version needs; StoreError otherwise.

    Every command that reads or writes the store opens it here, so an unreachable server, a
    missing driver or a missing migration is one line before anything is read or written,
    and a SQLite file that does not exist is not created.
    """
    _require_file(url)
    engine = make_engine(url)
    try:
        _require_head(url, _revision(engine))
    except BaseException:
        engine.dispose()
        raise
    return engine


def _require_file(url: str) -> None:
    """A SQLite store must exist already: connecting would create an empty file."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise StoreError("the database does not exist", path=display_url(url),
                         hint=f"{UPGRADE_HINT} to create it")


def require_head(url: str) -> None:
    """Refuse a database that :func:`open_store` would refuse."""
    open_store(url).dispose()


def _require_head(url: str, revision: str | None) -> None:
    newest = head()
    if revision == newest:
        return
    try:
        known = revision is None or _scripts().get_revision(revision) is not None
    except CommandError:  # a revision the scripts do not define
        known = False
    hint = f"{UPGRADE_HINT} first" if known else "the database is newer than this sif-lifecycle: upgrade it"
    raise StoreError(f"the database schema is at {revision or 'nothing'}, this version needs {newest}",
                     path=display_url(url), hint=hint)


def _revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connection_error(exc, engine.url) from exc
    try:
        return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise database_error(exc) from exc
    finally:
        conn.close()


def _run(action: object, url: str, revision: str) -> None:
    try:
        action(alembic_config(url), revision)  # type: ignore[operator]
    except (CommandError, SQLAlchemyError) as exc:
        raise StoreError(f"migration to {revision} failed: {str(exc).splitlines()[0]}") from exc
