"""Databases for the service tests: a migrated SQLite file, or a migrated fresh PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from lifecycle.store import migrate
from lifecycle.store.db import sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "lifecycle.db")
    else:
        url = request.getfixturevalue("pg_url")
    migrate.upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from lifecycle.store.db import make_engine

    engine = make_engine(db_url)
    yield engine
    engine.dispose()
