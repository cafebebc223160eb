"""Tree hashes, proofs and verification against RFC 6962 / certificate-transparency test vectors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import LogError, LogProofError
from lifecycle.tlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryHashStore,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves and tree heads of the certificate-transparency reference tests (RFC 6962),
# as published in certificate-transparency-go merkletree tests and transparency-dev/merkle.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


class CountingStore(MemoryHashStore):
    """Counts stored-hash reads, to show proofs read O(log n) of them."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        self.reads += len(indexes)
        return super().read_hashes(indexes)


def build(leaves: Sequence[bytes]) -> CountingStore:
    store = CountingStore()
    for leaf in leaves:
        store.append(leaf_hash(leaf))
    return store


def reference_root(hashes: Sequence[bytes]) -> bytes:
    """MTH straight from RFC 6962's recursive definition, independent of the stored hashes."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(reference_root(hashes[:k]), reference_root(hashes[k:]))


N = 64
LEAVES = [b"leaf %d" % i for i in range(N)]
STORE = build(LEAVES)
ROOTS = [tree_hash(n, STORE) for n in range(N + 1)]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert tree_hash(0, MemoryHashStore()).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_roots_match_rfc6962_vectors() -> None:
    store = build(CT_LEAVES)
    assert [tree_hash(n, store).hex() for n in range(1, 9)] == CT_ROOTS
    assert store.frontier.root().hex() == CT_ROOTS[-1]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_proofs_match_vectors(index: int, size: int, proof: list[str]) -> None:
    store = build(CT_LEAVES)
    got = prove_inclusion(index, size, store)
    assert [h.hex() for h in got] == proof
    root = bytes.fromhex(CT_ROOTS[size - 1])
    verify_inclusion(index, size, leaf_hash(CT_LEAVES[index]), got, root)


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_vectors(old: int, new: int, proof: list[str]) -> None:
    store = build(CT_LEAVES)
    got = prove_consistency(old, new, store)
    assert [h.hex() for h in got] == proof
    verify_consistency(
        old, new, bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1]), got
    )


def test_stored_roots_equal_the_recursive_definition() -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    assert [reference_root(hashes[:n]) for n in range(N + 1)] == ROOTS


def test_stored_hash_indexes_are_dense_and_in_append_order() -> None:
    created: list[int] = []
    frontier = Frontier()
    for leaf in LEAVES:
        created.extend(i for i, _ in frontier.append(leaf_hash(leaf)))
        assert len(created) == stored_hash_count(frontier.size)
    assert created == list(range(stored_hash_count(N)))
    # Spot values of the numbering (Go's tlog.StoredHashIndex agrees, see the interop test).
    assert [stored_hash_index(0, n) for n in range(4)] == [0, 1, 3, 4]
    assert [stored_hash_index(1, 0), stored_hash_index(2, 0), stored_hash_index(1, 1)] == [2, 6, 5]


def test_all_inclusion_proofs_up_to_64_verify_and_only_for_their_leaf() -> None:
    for n in range(1, N + 1):
        for i in range(n):
            proof = prove_inclusion(i, n, STORE)
            assert len(proof) <= math.ceil(math.log2(n))
            verify_inclusion(i, n, leaf_hash(LEAVES[i]), proof, ROOTS[n])
            other = leaf_hash(LEAVES[(i + 1) % n])
            if n > 1:
                with pytest.raises(LogProofError):
                    verify_inclusion(i, n, other, proof, ROOTS[n])


def test_all_consistency_proofs_up_to_64_verify() -> None:
    for n in range(N + 1):
        for m in range(n + 1):
            proof = prove_consistency(m, n, STORE)
            verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
            if 0 < m < n:
                with pytest.raises(LogProofError):
                    verify_consistency(m, n, ROOTS[m - 1], ROOTS[n], proof)


def _tampered(proof: list[bytes]) -> list[list[bytes]]:
    """Every way a proof is mangled: a flipped bit in each hash, truncated, extended, swapped."""
    out = []
    for k in range(len(proof)):
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        out.append(bad)
    if proof:
        out.append(proof[:-1])
    out.append([*proof, b"\xab" * 32])
    if len(proof) >= 2 and proof[0] != proof[1]:
        out.append([proof[1], proof[0], *proof[2:]])
    return out


def test_tampered_inclusion_proofs_are_rejected() -> None:
    for n in range(2, N + 1):
        for i in range(n):
            for bad in _tampered(prove_inclusion(i, n, STORE)):
                with pytest.raises(LogProofError):
                    verify_inclusion(i, n, leaf_hash(LEAVES[i]), bad, ROOTS[n])


def test_tampered_consistency_proofs_are_rejected() -> None:
    for n in range(2, N + 1):
        for m in range(1, n):
            for bad in _tampered(prove_consistency(m, n, STORE)):
                with pytest.raises(LogProofError):
                    verify_consistency(m, n, ROOTS[m], ROOTS[n], bad)


def test_degenerate_and_malformed_inputs() -> None:
    with pytest.raises(LogProofError):
        verify_consistency(4, 4, ROOTS[4], ROOTS[5], [])
    with pytest.raises(LogProofError):
        verify_consistency(4, 4, ROOTS[4], ROOTS[4], [ROOTS[1]])
    with pytest.raises(LogProofError):
        verify_consistency(5, 3, ROOTS[5], ROOTS[3], [])
    with pytest.raises(LogProofError):
        verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    with pytest.raises(LogProofError):
        verify_inclusion(8, 8, leaf_hash(LEAVES[0]), prove_inclusion(0, 8, STORE), ROOTS[8])
    with pytest.raises(LogProofError):
        verify_inclusion(0, 8, b"short", prove_inclusion(0, 8, STORE), ROOTS[8])
    with pytest.raises(LogError):
        prove_inclusion(8, 8, STORE)
    with pytest.raises(LogError):
        prove_consistency(9, 8, STORE)


def test_proofs_read_logarithmically_many_stored_hashes() -> None:
    store = build([b"%d" % i for i in range(5000)])
    for n, i, m in [(5000, 0, 1), (5000, 4999, 4321), (4097, 2048, 4095), (3333, 1234, 2049)]:
        bound = 2 * math.ceil(math.log2(n)) + 2
        store.reads = 0
        prove_inclusion(i, n, store)
        assert store.reads <= bound
        store.reads = 0
        prove_consistency(m, n, store)
        assert store.reads <= bound
        store.reads = 0
        tree_hash(n, store)
        assert store.reads == n.bit_count()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_property_proofs_verify_and_bind(n: int, data: st.DataObject) -> None:
    store = build([b"p%d" % i for i in range(n)])
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(0, n))
    root = tree_hash(n, store)
    proof = prove_inclusion(i, n, store)
    verify_inclusion(i, n, leaf_hash(b"p%d" % i), proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[k] = bytes(b ^ (1 << bit % 8) * (j == bit // 8) for j, b in enumerate(bad[k]))
        with pytest.raises(LogProofError):
            verify_inclusion(i, n, leaf_hash(b"p%d" % i), bad, root)
    cproof = prove_consistency(m, n, store)
    verify_consistency(m, n, tree_hash(m, store), root, cproof)
    assert len(cproof) <= math.ceil(math.log2(n)) + 1
