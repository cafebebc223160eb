"""RFC 6962/9162 Merkle tree hashing, proofs and their verification over stored subtree hashes.

Only hashes of *complete* subtrees are stored: the subtree of ``2**level`` leaves starting at leaf
``k * 2**level`` has the stored hash index :func:`stored_hash_index`, numbered in the order an
append-only log creates them (the numbering of Go's ``golang.org/x/mod/sumdb/tlog``, so its
``HashReader`` can read our store). Appending a leaf stores 1 + (trailing one bits) hashes; a root,
inclusion proof or consistency proof reads O(log n) stored hashes in a single batch, because every
subtree an RFC 6962 algorithm needs is either complete (one stored hash) or on the tree's right
edge (at most log n stored hashes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lifecycle.errors import LogError, LogProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]  # leaves [lo, hi)
# (level, k): the complete subtree of leaves [k * 2**level, (k + 1) * 2**level)
Piece = tuple[int, int]


class HashReader(Protocol):
    """Reads stored hashes by index; raises :class:`LogError` when one is missing."""

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]: ...


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2): RFC 6962's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def stored_hash_count(tree_size: int) -> int:
    """How many hashes a tree of ``tree_size`` leaves has stored: one per complete subtree."""
    return 2 * tree_size - tree_size.bit_count()


def stored_hash_index(level: int, k: int) -> int:
    """Index of the hash of subtree ``(level, k)``, assigned in the order appends store hashes.

    That subtree completes when its last leaf ``m - 1`` is appended; the hashes stored for the
    ``m - 1`` leaves before come first, and the append of leaf ``m - 1`` stores levels 0, 1, ...
    """
    last = ((k + 1) << level) - 1
    return stored_hash_count(last) + level


def _pieces(lo: int, hi: int) -> list[Piece]:
    """The complete subtrees, left to right, whose right fold is RFC 6962's MTH(D[lo:hi]).

    Valid for every range an RFC 6962 recursion visits: ``lo`` is a multiple of a power of two
    at least ``hi - lo``, so greedy largest-power-of-two blocks are exactly the RFC splits.
    """
    out: list[Piece] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of the piece hashes of a range into its Merkle tree hash."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hashes(ranges: Sequence[Range], reader: HashReader) -> list[bytes]:
    """Hashes of several ranges, reading all their stored pieces in one batch."""
    pieces = [_pieces(lo, hi) for lo, hi in ranges]
    indexes = sorted({stored_hash_index(*p) for ps in pieces for p in ps})
    got = reader.read_hashes(indexes)
    if len(got) != len(indexes):
        raise LogError(f"the hash store returned {len(got)} of {len(indexes)} hashes")
    table = dict(zip(indexes, got, strict=True))
    return [_fold([table[stored_hash_index(*p)] for p in ps]) for ps in pieces]


def _check_size(name: str, value: int, limit: int) -> None:
    if not 0 <= value <= limit:
        raise LogError(f"{name} {value} is outside the tree (0..{limit})")


def tree_hash(tree_size: int, reader: HashReader) -> bytes:
    """MTH(D[0:tree_size]) from at most popcount(tree_size) stored hashes."""
    if tree_size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, tree_size)], reader)[0]


def inclusion_ranges(index: int, tree_size: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[0:tree_size]), leaf first (RFC 6962 2.1.1)."""
    out: list[Range] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(old_size, D[0:new_size]) (RFC 6962 2.1.2)."""
    if old_size in (0, new_size):
        return []
    out: list[Range] = []
    lo, hi, m, whole_old_tree = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole_old_tree = lo + k, m - k, False
    if not whole_old_tree:
        out.append((lo, hi))
    out.reverse()
    return out


def prove_inclusion(index: int, tree_size: int, reader: HashReader) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves."""
    if not 0 <= index < tree_size:
        raise LogError(f"leaf {index} is not in a tree of {tree_size} leaves")
    return _range_hashes(inclusion_ranges(index, tree_size), reader)


def prove_consistency(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """Consistency proof that the tree of ``old_size`` leaves is a prefix of ``new_size``."""
    _check_size("old size", old_size, new_size)
    return _range_hashes(consistency_ranges(old_size, new_size), reader)


def _check_hashes(proof: Sequence[bytes], *hashes: bytes) -> None:
    for h in (*proof, *hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise LogProofError(f"a hash in the proof is not {HASH_SIZE} bytes")


def _sibling_sides(fn: int, sn: int, count: int) -> list[bool]:
    """Walk of RFC 9162 2.1.3.2/2.1.4.2: for each proof hash, is it a left sibling?

    ``fn`` is the node's index and ``sn`` the last index at the current level; the walk must use
    exactly ``count`` hashes to reach the root, or the proof does not fit the tree.
    """
    sides: list[bool] = []
    for _ in range(count):
        if sn == 0:
            raise LogProofError("the proof is longer than the path to the root")
        left = bool(fn & 1) or fn == sn
        sides.append(left)
        if left:
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogProofError("the proof is shorter than the path to the root")
    return sides


def root_from_inclusion_proof(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof implies (RFC 9162 2.1.3.2); raises if the proof is malformed."""
    _check_hashes(proof, leaf)
    if not 0 <= index < tree_size:
        raise LogProofError(f"leaf index {index} is not below the tree size {tree_size}")
    r = leaf
    for p, left in zip(proof, _sibling_sides(index, tree_size - 1, len(proof)), strict=True):
        r = node_hash(p, r) if left else node_hash(r, p)
    return r


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`LogProofError` unless ``proof`` puts leaf hash ``leaf`` at ``index``."""
    if root_from_inclusion_proof(index, tree_size, leaf, proof) != root:
        raise LogProofError(
            f"the inclusion proof of entry {index} does not lead to the root "
            f"of tree size {tree_size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`LogProofError` unless ``proof`` shows ``old_root``'s tree is a prefix.

    RFC 9162 2.1.4.2; the empty tree is a prefix of every tree (with an empty proof).
    """
    _check_hashes(proof, old_root, new_root)
    if not 0 <= old_size <= new_size:
        raise LogProofError(f"tree size went from {old_size} to {new_size}: a log never shrinks")
    if old_size == new_size or old_size == 0:
        if proof:
            raise LogProofError("a consistency proof between these sizes must be empty")
        if old_size == new_size and old_root != new_root:
            raise LogProofError(f"two different roots for the same tree size {old_size}")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise LogProofError("the root of the empty tree is not SHA-256 of nothing")
        return
    if not proof:
        raise LogProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c, left in zip(path[1:], _sibling_sides(fn, sn, len(path) - 1), strict=True):
        if left:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if fr != old_root or sr != new_root:
        raise LogProofError(
            f"the consistency proof does not connect tree size {old_size} to {new_size}"
        )


@dataclass
class Frontier:
    """The right edge of a tree: the complete subtrees covering [0, size), largest first.

    It is all an appender needs: each new leaf is pushed and equal-level neighbours merge like a
    binary counter, which yields exactly the stored hashes the append creates, and the root is
    their right fold. It is loaded once from the store with :meth:`load`.
    """

    size: int = 0
    stack: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    def load(cls, tree_size: int, reader: HashReader) -> Frontier:
        pieces = _pieces(0, tree_size)
        got = reader.read_hashes([stored_hash_index(*p) for p in pieces])
        if len(got) != len(pieces):
            raise LogError(f"the hash store returned {len(got)} of {len(pieces)} hashes")
        return cls(tree_size, [(p[0], h) for p, h in zip(pieces, got, strict=True)])

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.stack))

    def append(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Add a leaf hash; return the (stored index, hash) pairs this append creates."""
        index = self.size
        self.stack.append((0, leaf))
        created = [(stored_hash_index(0, index), leaf)]
        while len(self.stack) > 1 and self.stack[-1][0] == self.stack[-2][0]:
            level, right = self.stack.pop()
            _, left = self.stack.pop()
            merged = node_hash(left, right)
            self.stack.append((level + 1, merged))
            created.append((stored_hash_index(level + 1, index >> (level + 1)), merged))
        self.size += 1
        return created

    def root(self) -> bytes:
        return _fold([h for _, h in self.stack]) if self.stack else EMPTY_ROOT


class MemoryHashStore:
    """Stored hashes in a list, for tests and for building a tree in memory."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.frontier = Frontier()

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash; return its index."""
        index = self.frontier.size
        for stored, h in self.frontier.append(leaf):
            if stored != len(self.hashes):
                raise LogError(f"stored hash {stored} created out of order")
            self.hashes.append(h)
        return index

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        try:
            return [self.hashes[i] for i in indexes]
        except IndexError:
            raise LogError("a stored hash beyond the end of the tree was requested") from None
