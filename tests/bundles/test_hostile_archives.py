"""Hostile archives fail with one line, exit 2, in bounded memory: every header counts."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lifecycle.bundles.archive import read_bundle
from lifecycle.bundles.bounded_tar import Limits
from lifecycle.errors import BundleError
from tests.bundles.hostile import ARCHIVES
from tests.conftest import REPO

RSS_LIMIT = 200 << 20
LAUNCHER = (
    "import resource, subprocess, sys; "
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stdout.write(done.stderr + done.stdout); "
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
"""A child's ru_maxrss starts from the high-water mark of the process it was exec'ed from: a
small launcher runs the CLI so the figure is the CLI's own (as benchmarks/verify_throughput.py)."""

REASONS = {
    "gnu-long-name-1.5GiB": "a tar extended header of 1610612736 bytes (limit 65536)",
    "pax-header-1.5MiB": "a tar extended header of 1572881 bytes (limit 65536)",
    "2M-directory-entries": "more than 10000 tar entries",
    "deflate-bomb-1.5GiB": "more than 32 MiB once decompressed",
}


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_hostile_archive_fails_in_bounded_memory(tmp_path: Path, name: str) -> None:
    archive = ARCHIVES[name](tmp_path / f"{name}.tar.gz")
    assert archive.stat().st_size < 5 << 20
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "lifecycle.cli.main", "bundle",
         "verify", "--trust-store", str(tmp_path / "trust"), str(archive)],
        capture_output=True, text=True, timeout=120, env=env, check=True)
    *output, status = done.stdout.strip().splitlines()
    code, rss_kib = map(int, status.split())
    assert code == 2, done.stdout
    assert output == [f"Error: {archive}: not a readable tar.gz bundle ({REASONS[name]}"
                      + output[0].split(REASONS[name], 1)[-1]]
    assert len(output) == 1 and "Traceback" not in done.stdout
    assert rss_kib * 1024 < RSS_LIMIT, f"{rss_kib} KiB"
    assert not (tmp_path / "trust").exists()


def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> Path:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_and_prefixes_are_read(tmp_path: Path, fmt: int) -> None:
    deep = "/".join(["d" * 40] * 4) + "/f.txt"  # over 100 bytes: prefix, pax path or GNU L
    name = f"ü-{'n' * 120}.txt" if fmt != tarfile.USTAR_FORMAT else deep.replace("f.", "g.")
    path = _tar(tmp_path / "ok.tar.gz", [_file(name, b"one"), _file(deep, b"two"),
                                         _file("small", b"")], fmt)
    assert read_bundle(path) == {name: b"one", deep: b"two", "small": b""}


def test_limits_count_entries_headers_and_bytes(tmp_path: Path) -> None:
    many = _tar(tmp_path / "many.tar.gz", [_file(f"f{i}", b"x") for i in range(12)],
                tarfile.PAX_FORMAT)
    assert len(read_bundle(many, Limits(entries=12))) == 12
    with pytest.raises(BundleError, match="more than 11 tar entries"):
        read_bundle(many, Limits(entries=11))
    long = _tar(tmp_path / "long.tar.gz", [_file("n" * 3000, b"x")] * 2, tarfile.GNU_FORMAT)
    with pytest.raises(BundleError, match="over 4096 bytes"):
        read_bundle(long, Limits(header_bytes=4096))
    with pytest.raises(BundleError, match="longer than 1000 bytes"):
        read_bundle(long, Limits(name=1000))
    big = _tar(tmp_path / "big.tar.gz", [_file("a", bytes(3000))], tarfile.PAX_FORMAT)
    with pytest.raises(BundleError, match="more than 0 MiB once decompressed"):
        read_bundle(big, Limits(total_bytes=2048))


def test_corrupt_headers_are_one_line(tmp_path: Path) -> None:
    good = _tar(tmp_path / "g.tar", [_file("a", b"x")], tarfile.PAX_FORMAT)
    raw = bytearray(gzip.decompress(good.read_bytes()))
    raw[0] ^= 1
    (tmp_path / "bad.tar").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"header checksum mismatch"):
        read_bundle(tmp_path / "bad.tar")
    (tmp_path / "cut.tar.gz").write_bytes(good.read_bytes()[:-30])
    with pytest.raises(BundleError, match=r"not a readable tar\.gz bundle"):
        read_bundle(tmp_path / "cut.tar.gz")


def test_directory_entries_count_before_listing_more(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    for i in range(30):
        (root / f"d{i}").mkdir(parents=True)
    with pytest.raises(BundleError, match="more than 20 entries"):
        read_bundle(root, Limits(entries=20))
    (root / "d0" / "big").write_bytes(bytes(5000))
    with pytest.raises(BundleError, match="more than the 4096 allowed"):
        read_bundle(root, Limits(total_bytes=4096))
