"""Engines and column types: SQLite by default (WAL), PostgreSQL by URL; datetimes always UTC-aware.

SQLite has no timezone type, so :class:`UTCDateTime` normalises to UTC on the way in and puts
the UTC tzinfo back on the way out; PostgreSQL stores ``timestamptz`` and gets the same values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

from lifecycle.config import sqlite_url as sqlite_url  # moved down: the config builds it
from lifecycle.errors import StoreError


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that refuses naive datetimes and always returns aware UTC ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("refusing to store a naive datetime; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit is durable before it is acknowledged
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


UPGRADE_HINT = "run 'sif-lifecycle db upgrade'"
"""What to do about a missing or older schema."""

POSTGRES_EXTRA = "pip install 'sif-lifecycle[postgres]'"
"""How to get the PostgreSQL driver: it is an optional extra, SQLite needs nothing."""

CONNECT_TIMEOUT_SECONDS = 10
"""A PostgreSQL host that drops packets fails after this long instead of hanging the command."""


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database URL {url!r} is not valid",
                         hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from exc


def display_url(url: str | URL) -> str:
    """The URL as messages show it: never the password."""
    parsed = parse_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for in-memory SQLite and for other databases."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their directory created and WAL switched on.

    Creating the engine imports the database driver, so a missing one is reported here, with
    the install command, instead of as a traceback from the first query.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_file(parsed)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _on_sqlite_connect)
            return engine
        connect_args = ({"connect_timeout": CONNECT_TIMEOUT_SECONDS}
                        if parsed.get_driver_name() in ("psycopg", "psycopg2") else {})
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as exc:
        driver = exc.name or parsed.get_driver_name()
        hint = POSTGRES_EXTRA if parsed.get_backend_name() == "postgresql" else f"install {driver}"
        raise StoreError(f"the database driver {driver!r} is not installed", path=display_url(parsed),
                         hint=hint) from None
    except ArgumentError as exc:  # an unknown dialect or driver name
        raise StoreError(f"unsupported database URL: {str(exc).splitlines()[0]}", path=display_url(parsed),
                         hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from None


def connection_error(exc: DBAPIError, url: str | URL) -> StoreError:
    """One line for a database that cannot be reached: where it was looked for and what to check."""
    parsed = parse_url(url) if isinstance(url, str) else url
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else exc.__class__.__name__
    if parsed.get_backend_name() == "sqlite":
        hint = "check the [database] path and its permissions"
    else:
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        hint = f"is PostgreSQL running at {where}?"
    return StoreError(f"cannot connect to the database: {reason}", path=display_url(parsed), hint=hint)


def database_error(exc: SQLAlchemyError) -> StoreError:
    """One line for a statement that failed; most often a schema older than the code."""
    return StoreError(f"database error: {exc.__class__.__name__}: {exc}".splitlines()[0],
                      hint=f"{UPGRADE_HINT} if the schema is missing")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back (nothing written) on error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise database_error(exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
