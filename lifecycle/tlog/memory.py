"""An in-memory :class:`~lifecycle.tlog.log.LogStorage`, for tests and throwaway logs."""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.errors import LogConflictError, LogError
from lifecycle.tlog.log import LeafRecord


class MemoryLogStorage:
    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.leaf_hashes: dict[bytes, int] = {}
        self.hashes: dict[int, bytes] = {}

    def tree_size(self) -> int:
        return len(self.leaves)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        try:
            return [self.hashes[i] for i in indexes]
        except KeyError as exc:
            raise LogError(f"stored hash {exc.args[0]} is missing") from None

    def read_leaves(self, start: int, end: int) -> list[bytes]:
        return self.leaves[start:end]

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        return self.leaf_hashes.get(leaf_hash)

    def append(self, records: Sequence[LeafRecord], hashes: Sequence[tuple[int, bytes]]) -> None:
        if records and records[0].index != len(self.leaves):
            raise LogConflictError(f"entry {records[0].index} is not the next one")
        for record in records:
            self.leaves.append(record.leaf)
            self.leaf_hashes.setdefault(record.leaf_hash, record.index)
        self.hashes.update(hashes)
