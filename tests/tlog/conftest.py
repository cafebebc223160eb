"""Shared fixtures: a log key, fresh SQLite and PostgreSQL stores (real servers, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from lifecycle.store.migrate import open_migrated
from lifecycle.tlog import NoteSigner, Submission

ORIGIN = "example.org/sif-lifecycle/test-log"


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
    engine = open_migrated(f"sqlite:///{tmp_path}/tlog.db")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(pg_url: str) -> Iterator[Engine]:
    """The log's tables in a schema of their own on the local PostgreSQL."""
    engine = open_migrated(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
