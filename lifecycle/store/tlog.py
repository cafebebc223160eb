"""SQL storage of the transparency log (SQLite in WAL mode, or PostgreSQL).

Three tables: ``tlog_entry`` (one row per leaf, keyed by index), ``tlog_hash`` (one row per stored
subtree hash, keyed by its stored hash index, see :mod:`lifecycle.tlog.merkle`) and ``tlog_meta``
(the log's origin and verifier key), plus ``tlog_intent``: one row per ephemeral signing,
written before its log append and completed after the image write, so entries whose image
signature was never written (a crash in between) are listed by ``tlog check``. An append is one
transaction; it is acknowledged only after the commit returned, and SQLite runs with
``synchronous=FULL`` so a committed append survives a crash or power loss. Two writers racing
for the same index collide on the primary key, which the log turns into a retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlmodel import Field, SQLModel

from lifecycle.errors import LogConflictError, LogError
from lifecycle.store.db import UTCDateTime, connection_error
from lifecycle.tlog.log import LeafRecord

# SQLite makes only INTEGER PRIMARY KEY the rowid; BIGINT would add a second index.
_Index = BigInteger().with_variant(Integer(), "sqlite")


class TlogEntryRow(SQLModel, table=True):
    """A log leaf: the canonical entry bytes, plus copies of fields worth querying."""

    __tablename__: ClassVar[str] = "tlog_entry"

    idx: int = Field(sa_column=Column(_Index, primary_key=True, autoincrement=False))
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, index=True))
    image_id: str = Field(sa_column=Column(String, nullable=False, index=True))
    integrated_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TlogHashRow(SQLModel, table=True):
    """A stored Merkle subtree hash."""

    __tablename__: ClassVar[str] = "tlog_hash"

    idx: int = Field(sa_column=Column(_Index, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class TlogMetaRow(SQLModel, table=True):
    """The log's identity: ``origin`` and ``verifier_key``."""

    __tablename__: ClassVar[str] = "tlog_meta"

    key: str = Field(sa_column=Column(String, primary_key=True))
    value: str = Field(sa_column=Column(String, nullable=False))


class TlogIntentRow(SQLModel, table=True):
    """An ephemeral signing of ``image_path``: begun, the log entries it appended, completed."""

    __tablename__: ClassVar[str] = "tlog_intent"

    id: int | None = Field(default=None, sa_column=Column(_Index, primary_key=True))
    image_path: str = Field(sa_column=Column(String, nullable=False))
    image_id: str = Field(sa_column=Column(String, nullable=False))
    started: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    entries: str = Field(sa_column=Column(String, nullable=False))
    """JSON list of [origin, index] of the entries appended so far."""
    completed: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime, nullable=True, index=True))


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


ENTRY = _table(TlogEntryRow)
HASH = _table(TlogHashRow)
META = _table(TlogMetaRow)
INTENT = _table(TlogIntentRow)
TABLES = (ENTRY, HASH, META)


@dataclass(frozen=True)
class Intent:
    """A signing that appended ``entries`` ((origin, index) pairs) and never wrote its image."""

    id: int
    image_path: str
    image_id: str
    started: datetime
    entries: tuple[tuple[str, int], ...]
    suspects: tuple[int, ...] = ()
    """Entries of this image logged since the signing began but not recorded (a kill right after
    the append), when the log is in the same database."""


class IntentJournal:
    """Records each ephemeral signing around its log appends (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(self, image_path: str, image_id: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(insert(INTENT).values(
                image_path=image_path, image_id=image_id, started=now, entries="[]"))
            key = row.inserted_primary_key
            assert key is not None
            return int(key[0])

    def logged(self, intent: int, origin: str, index: int) -> None:
        """Called as soon as an append returned, before anything else can fail."""
        with self.engine.begin() as conn:
            entries = json.loads(conn.execute(
                select(INTENT.c.entries).where(INTENT.c.id == intent)).scalar_one())
            conn.execute(update(INTENT).where(INTENT.c.id == intent).values(
                entries=json.dumps([*entries, [origin, index]])))

    def complete(self, intent: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(INTENT).where(INTENT.c.id == intent).values(completed=now))

    def pending(self) -> list[Intent]:
        """Signings never completed (none when the database has no journal)."""
        with self.engine.connect() as conn:
            try:
                rows = conn.execute(select(INTENT).order_by(INTENT.c.id)).all()
            except (OperationalError, ProgrammingError):  # a log-only database: no journal
                return []
            recorded = {int(i) for r in rows for _, i in json.loads(r.entries)}
            intents = []
            for r in rows:
                if r.completed is not None:
                    continue
                entries = tuple((str(o), int(i)) for o, i in json.loads(r.entries))
                suspects = () if entries else self._suspects(conn, r, recorded)
                intents.append(Intent(int(r.id), r.image_path, r.image_id, r.started, entries,
                                      suspects))
        return intents

    @staticmethod
    def _suspects(conn: Connection, intent: Row[Any], recorded: set[int]) -> tuple[int, ...]:
        query = select(ENTRY.c.idx).where(ENTRY.c.image_id == intent.image_id,
                                          ENTRY.c.integrated_time >= intent.started)
        try:
            found = conn.execute(query.order_by(ENTRY.c.idx)).scalars().all()
        except (OperationalError, ProgrammingError):  # the log is in another database
            return ()
        return tuple(int(i) for i in found if int(i) not in recorded)


def write_meta(engine: Engine, values: Mapping[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(META.delete().where(META.c.key.in_(list(values))))
        conn.execute(insert(META), [{"key": k, "value": v} for k, v in values.items()])


def read_meta(engine: Engine) -> dict[str, str]:
    try:
        conn = engine.connect()
    except DBAPIError as exc:  # not "no log": the server is down or the file cannot be opened
        raise connection_error(exc, engine.url) from exc
    try:
        with conn:
            return {row.key: row.value for row in conn.execute(select(META.c.key, META.c.value))}
    except (OperationalError, ProgrammingError):  # SQLite / PostgreSQL: no such table
        raise LogError(
            "the database has no transparency log", hint="run 'sif-lifecycle tlog init' first"
        ) from None


class SqlLogStorage:
    """:class:`lifecycle.tlog.LogStorage` over an SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read_hashes = select(HASH.c.idx, HASH.c.hash).where(
            HASH.c.idx.in_(bindparam("indexes", expanding=True))
        )

    def tree_size(self) -> int:
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(ENTRY.c.idx))).scalar_one()
        return 0 if top is None else int(top) + 1

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(self._read_hashes, {"indexes": list(indexes)}).all()
        found = {int(r.idx): bytes(r.hash) for r in rows}
        missing = [i for i in indexes if i not in found]
        if missing:
            raise LogError(f"stored hashes {missing[:5]} are missing from the database")
        return [found[i] for i in indexes]

    def read_leaves(self, start: int, end: int) -> list[bytes]:
        query = (
            select(ENTRY.c.leaf)
            .where(ENTRY.c.idx >= start, ENTRY.c.idx < end)
            .order_by(ENTRY.c.idx)
        )
        with self.engine.connect() as conn:
            return [bytes(leaf) for leaf in conn.execute(query).scalars()]

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        query = select(func.min(ENTRY.c.idx)).where(ENTRY.c.leaf_hash == leaf_hash)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one()
        return None if found is None else int(found)

    def append(self, records: Sequence[LeafRecord], hashes: Sequence[tuple[int, bytes]]) -> None:
        if not records:
            return
        entries = [
            {
                "idx": r.index,
                "leaf": r.leaf,
                "leaf_hash": r.leaf_hash,
                "image_id": r.image_id,
                "integrated_time": r.integrated_time,
            }
            for r in records
        ]
        try:
            with self.engine.begin() as conn:
                top = conn.execute(select(func.max(ENTRY.c.idx))).scalar_one()
                size = 0 if top is None else int(top) + 1
                if records[0].index != size:
                    raise LogConflictError(f"entry {records[0].index} is not next ({size} is)")
                conn.execute(insert(ENTRY), entries)
                conn.execute(insert(HASH), [{"idx": i, "hash": h} for i, h in hashes])
        except IntegrityError:
            raise LogConflictError("another writer appended the same entries first") from None
        except OperationalError as exc:
            # SQLite: a reader that wants to write after another writer committed gets "busy".
            if "locked" in str(exc) or "busy" in str(exc):
                raise LogConflictError("another writer holds the database") from None
            raise


def log_summary(engine: Engine) -> tuple[int, datetime | None, set[str]]:
    """(entries, newest integrated time, image ids with an entry) of the log in ``engine``."""
    with engine.connect() as conn:
        size, newest = conn.execute(select(func.count(), func.max(ENTRY.c.integrated_time))).one()
        logged = {row[0] for row in conn.execute(select(ENTRY.c.image_id).distinct())}
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)  # SQLite's max() drops the zone; it is stored UTC
    return int(size), newest, logged
