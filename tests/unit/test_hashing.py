"""The hashing engine: the same digests whether objects are hashed serially or in parallel threads,
through mapped windows or copying reads."""

from __future__ import annotations

import fcntl
import hashlib
import random
import threading
from pathlib import Path

import pytest

from lifecycle.integrity import digest, hashing
from lifecycle.sif import FsType, PartType, SifImage, create_image, partition_spec
from lifecycle.sif import reading as reading_module

MiB = 1 << 20
SIZES = (3 * MiB + 17, 2 * MiB + 4096, 5 * MiB - 1, 1)
"""Not multiples of a window or a page, and one one-byte object."""


@pytest.fixture()
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Four partitions in two groups; windows of 1 MiB so that each object spans several."""
    monkeypatch.setattr(reading_module, "WINDOW_SIZE", MiB)
    monkeypatch.setattr(hashing, "PARALLEL_MIN_BYTES", 0)
    rng = random.Random(16)
    specs = []
    for n, size in enumerate(SIZES):
        part = tmp_path / f"part{n}.bin"
        part.write_bytes(rng.randbytes(size))
        specs.append(partition_spec(part, fs_type=FsType.RAW, part_type=PartType.DATA,
                                    group=1 + n % 2))  # fmt: skip
    path = tmp_path / "multi.sif"
    create_image(path, specs)
    return path


def request_for(sif: SifImage) -> digest.DigestRequest:
    request = digest.DigestRequest()
    for desc in sif.objects:
        request.want_object(desc.id, "sha256")
        request.want_object(desc.id, "sha512")
    request.want_group(1, "sha256")  # the legacy digest over the group's concatenated objects
    request.want_group(2, "sha384")
    return request


def expected(sif: SifImage) -> digest.DigestResults:
    """Computed independently: whole objects read with pread and hashed by hashlib."""
    out = digest.DigestResults()
    groups: dict[int, bytes] = {}
    for desc in sif.objects:
        data = sif.read(desc, limit=64 * MiB)
        out.objects[(desc.id, "sha256")] = hashlib.sha256(data).digest()
        out.objects[(desc.id, "sha512")] = hashlib.sha512(data).digest()
        groups[desc.group] = groups.get(desc.group, b"") + data
    out.groups[(1, "sha256")] = hashlib.sha256(groups[1]).digest()
    out.groups[(2, "sha384")] = hashlib.sha384(groups[2]).digest()
    return out


def test_serial_and_parallel_digests_are_equal(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads_seen: set[str] = set()
    original = hashing._run

    def recording(*args: object) -> None:
        threads_seen.add(threading.current_thread().name)
        original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "_run", recording)
    with SifImage.open(image) as sif:
        want = expected(sif)
        counted: list[int] = []
        serial = digest.compute(sif, request_for(sif), counted.append, threads=1)
        assert threads_seen == {threading.current_thread().name}
        threads_seen.clear()
        parallel = digest.compute(sif, request_for(sif), counted.append, threads=4)
        assert len(threads_seen) == 2 and all(n.startswith("sif-hash") for n in threads_seen)
    assert serial == parallel == want
    assert sum(counted) == 2 * sum(SIZES)


def test_independent_objects_get_their_own_lanes(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lanes: list[hashing.Lane] = []
    original = hashing.run_lanes

    def capture(img: SifImage, got: list[hashing.Lane], *rest: object) -> None:
        lanes.extend(got)
        original(img, got, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "run_lanes", capture)
    with SifImage.open(image) as sif:
        request = digest.DigestRequest()
        for desc in sif.objects:
            request.want_object(desc.id, "sha256")
        results = digest.compute(sif, request, threads=4)
        assert sorted(lane.size for lane in lanes) == sorted(SIZES)
        assert results.objects == {k: v for k, v in expected(sif).objects.items() if k[1] == "sha256"}


def test_mapped_and_copied_reads_give_the_same_bytes(image: Path) -> None:
    with SifImage.open(image) as sif:
        copied = {d.id: b"".join(bytes(c) for c in sif.stream(d)) for d in sif.objects}
        with sif.bulk_read():
            assert sif._mappable  # the shared lock was free: pages are mapped, not copied
            mapped = {d.id: b"".join(bytes(c) for c in sif.stream(d)) for d in sif.objects}
        assert not sif._mappable
    assert copied == mapped
    assert [len(v) for v in mapped.values()] == list(SIZES)


def test_a_writer_holding_the_image_makes_readers_copy(image: Path) -> None:
    """While another open file holds the exclusive lock, a reader never maps (it could be cut)."""
    with image.open("rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        with SifImage.open(image) as sif:
            with sif.bulk_read():
                assert not sif._mappable
            results = digest.compute(sif, request_for(sif), threads=2)
            assert results == expected(sif)
