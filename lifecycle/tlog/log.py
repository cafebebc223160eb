"""The transparency log: entries appended to a Merkle tree over a storage backend, and its evidence.

The storage backend only stores and reads; all hashing happens here. An append computes the new
leaves and the O(log n) stored hashes they complete, hands them to the backend in one atomic,
durable commit, and only then returns: the returned :class:`LoggedEntry` is the acknowledgement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lifecycle.clock import utc_now
from lifecycle.errors import LogConflictError, LogError
from lifecycle.tlog.checkpoint import Checkpoint
from lifecycle.tlog.entry import Entry, Submission
from lifecycle.tlog.evidence import Evidence
from lifecycle.tlog.merkle import (
    Frontier,
    HashReader,
    leaf_hash,
    prove_consistency,
    prove_inclusion,
    stored_hash_count,
    tree_hash,
)
from lifecycle.tlog.note import NoteSigner
from lifecycle.tlog.proof import ConsistencyProof, InclusionProof
from lifecycle.tlog.timestamp import Timestamp

APPEND_RETRIES = 5


@dataclass(frozen=True)
class LeafRecord:
    """One leaf as a backend stores it; ``image_id`` and time are copied out for queries."""

    index: int
    leaf: bytes
    leaf_hash: bytes
    image_id: str
    integrated_time: datetime


class LogStorage(HashReader, Protocol):
    """Durable storage of leaves and stored hashes (see :mod:`lifecycle.tlog.merkle`)."""

    def tree_size(self) -> int: ...

    def read_leaves(self, start: int, end: int) -> list[bytes]: ...

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """The lowest index of a leaf with this hash, or None."""
        ...

    def append(self, records: Sequence[LeafRecord], hashes: Sequence[tuple[int, bytes]]) -> None:
        """Store all of it in one durable transaction, or nothing.

        Raise :class:`LogConflictError` when ``records[0].index`` is not the current tree size
        (another writer came first).
        """
        ...


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    entry: Entry
    leaf_hash: bytes




class Log:
    """An append-only log named ``origin``; ``signer`` (the log key) is needed only to sign."""

    def __init__(
        self,
        storage: LogStorage,
        origin: str,
        signer: NoteSigner | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.signer = signer
        self.clock = clock
        self._lock = threading.Lock()
        self._frontier: Frontier | None = None

    # -- writing

    def append(self, submission: Submission, now: datetime | None = None) -> LoggedEntry:
        return self.append_many([submission], now)[0]

    def append_many(self, submissions: Sequence[Submission],
                    now: datetime | None = None) -> list[LoggedEntry]:
        """Append in one transaction, all at the same integrated time (``now``, default the
        log's clock); durable on return."""
        if not submissions:
            return []
        with self._lock:
            for _ in range(APPEND_RETRIES):
                frontier = self._current_frontier()
                staged = frontier.copy()
                when = now or self.clock()
                records: list[LeafRecord] = []
                hashes: list[tuple[int, bytes]] = []
                done: list[LoggedEntry] = []
                for submission in submissions:
                    entry = Entry(submission, when)
                    leaf = entry.encode()
                    h = leaf_hash(leaf)
                    index = staged.size
                    hashes.extend(staged.append(h))
                    records.append(
                        LeafRecord(index, leaf, h, submission.image_id, entry.integrated_time)
                    )
                    done.append(LoggedEntry(index, entry, h))
                try:
                    self.storage.append(records, hashes)
                except LogConflictError:
                    self._frontier = None
                    continue
                self._frontier = staged
                return done
        raise LogConflictError(
            f"gave up appending after {APPEND_RETRIES} conflicts with other writers",
            hint="retry later",
        )

    def _current_frontier(self) -> Frontier:
        size = self.storage.tree_size()
        if self._frontier is None or self._frontier.size != size:
            self._frontier = Frontier.load(size, self.storage)
        return self._frontier

    # -- reading

    @property
    def size(self) -> int:
        return self.storage.tree_size()

    def _resolve_size(self, size: int | None) -> int:
        current = self.storage.tree_size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LogError(f"tree size {size} is beyond the log's current size {current}")
        return size

    def root(self, size: int | None = None) -> bytes:
        return tree_hash(self._resolve_size(size), self.storage)

    def get(self, index: int) -> LoggedEntry:
        size = self.storage.tree_size()
        if not 0 <= index < size:
            raise LogError(f"entry {index} does not exist; the log has {size} entries")
        leaf = self.storage.read_leaves(index, index + 1)[0]
        return LoggedEntry(index, Entry.decode(leaf), leaf_hash(leaf))

    def find(self, leaf_hash_: bytes) -> int | None:
        return self.storage.find_leaf(leaf_hash_)

    def stored_hash_count(self) -> int:
        return stored_hash_count(self.storage.tree_size())

    # -- evidence

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        n = self._resolve_size(size)
        return Checkpoint(self.origin, n, tree_hash(n, self.storage))

    def _signer(self) -> NoteSigner:
        if self.signer is None:
            raise LogError("the log was opened without its key, so it cannot sign")
        return self.signer

    def signed_checkpoint(self, size: int | None = None) -> bytes:
        return self.checkpoint(size).sign(self._signer())

    def timestamp(self, index: int) -> Timestamp:
        logged = self.get(index)
        return Timestamp(self.origin, index, logged.leaf_hash, logged.entry.integrated_time)

    def signed_timestamp(self, index: int) -> bytes:
        return self.timestamp(index).sign(self._signer())

    def evidence(self, index: int, size: int | None = None) -> Evidence:
        """Everything a verifier needs offline for entry ``index``, signed at tree ``size``."""
        n = self._resolve_size(size)
        if not 0 <= index < n:  # before any query: a huge index is no database error
            raise LogError(f"entry {index} is not in the log at size {n}")
        return Evidence(
            self.storage.read_leaves(index, index + 1)[0],
            self.inclusion_proof(index, n),
            self.signed_checkpoint(n),
            self.signed_timestamp(index),
        )

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        n = self._resolve_size(size)
        return InclusionProof(index, n, tuple(prove_inclusion(index, n, self.storage)))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        n = self._resolve_size(new_size)
        return ConsistencyProof(old_size, n, tuple(prove_consistency(old_size, n, self.storage)))
