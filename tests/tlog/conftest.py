"""Shared fixtures: a log key, fresh SQLite and PostgreSQL stores (real servers, no mocks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lifecycle.store.tlog import connect, create_tlog_tables
from lifecycle.tlog import NoteSigner, Submission

ORIGIN = "example.org/sif-lifecycle/test-log"
PG_URL = os.environ.get("SIF_LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def submission(i: int) -> Submission:
    """A distinct, well-formed submission for entry number ``i``."""
    return Submission(
        payload_digest=i.to_bytes(32, "big"),
        signature=b"sig-%d" % i,
        certificate=b"-----BEGIN CERTIFICATE-----\ncert %d\n-----END CERTIFICATE-----\n" % i,
        image_id=f"00000000-0000-4000-8000-{i:012d}",
    )


@pytest.fixture
def sqlite_engine(tmp_path: object) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path}/tlog.db")
    create_tlog_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A schema of its own on the local PostgreSQL, dropped afterwards."""
    schema = f"tlog_test_{uuid.uuid4().hex[:12]}"
    base = connect(PG_URL)
    with base.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = base.execution_options(schema_translate_map={None: schema})
    try:
        create_tlog_tables(engine)
        yield engine
    finally:
        with base.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
