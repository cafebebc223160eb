"""Inclusion and consistency proofs as values: what a log hands out and a verifier checks.

JSON form (hashes in standard base64), used by the CLI and by bundles::

    {"type": "inclusion", "index": 5, "tree_size": 8, "hashes": ["...", ...]}
    {"type": "consistency", "old_size": 6, "new_size": 8, "hashes": ["...", ...]}
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import LogProofError
from lifecycle.tlog.checkpoint import parse_hash
from lifecycle.tlog.merkle import verify_consistency, verify_inclusion


def _hashes_to_json(hashes: tuple[bytes, ...]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _hashes_from_json(data: Mapping[str, Any]) -> tuple[bytes, ...]:
    hashes = data.get("hashes")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise LogProofError("the proof's 'hashes' is not a list of base64 strings")
    return tuple(parse_hash(h, "proof hash") for h in hashes)


def _int_field(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LogProofError(f"the proof's {name!r} is not a non-negative integer")
    return value


def _check_type(data: Mapping[str, Any], kind: str) -> None:
    if not isinstance(data, Mapping) or data.get("type") != kind:
        raise LogProofError(f"not an {kind} proof (expected \"type\": \"{kind}\")")


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def verify(self, leaf_hash: bytes, root_hash: bytes) -> None:
        """Raise :class:`LogProofError` unless the leaf is at ``index`` under ``root_hash``."""
        verify_inclusion(self.index, self.tree_size, leaf_hash, self.hashes, root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "inclusion",
            "index": self.index,
            "tree_size": self.tree_size,
            "hashes": _hashes_to_json(self.hashes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        _check_type(data, "inclusion")
        return cls(
            _int_field(data, "index"), _int_field(data, "tree_size"), _hashes_from_json(data)
        )


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        """Raise :class:`LogProofError` unless tree ``old_root`` is a prefix of ``new_root``."""
        verify_consistency(self.old_size, self.new_size, old_root, new_root, self.hashes)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "consistency",
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": _hashes_to_json(self.hashes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsistencyProof:
        _check_type(data, "consistency")
        return cls(
            _int_field(data, "old_size"), _int_field(data, "new_size"), _hashes_from_json(data)
        )
