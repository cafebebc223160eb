"""FIFOs, devices and huge files never hang or exhaust a command (finding 8).

A FIFO blocks ``open`` until a writer appears: every test here runs under an alarm, so a
regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.cli.main import cli
from lifecycle.errors import KeyMaterialError, LifecycleError, SifError
from lifecycle.files import read_file
from lifecycle.integrity import pgp
from lifecycle.sif import SifImage, create_image, json_spec
from tests.keygen import write_pem_pair


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("blocked on a special file")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.sif"
    os.mkfifo(path)
    return path


def test_read_file_refuses_special_files_and_bounds_size(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(KeyMaterialError, match="is a FIFO, not a regular file") as refused:
        read_file(fifo, limit=100, what="key file", error=KeyMaterialError)
    assert str(fifo) in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(LifecycleError, match="is a character device"):
        read_file("/dev/zero", limit=100, what="certificate")
    with pytest.raises(LifecycleError, match="is a directory"):
        read_file(tmp_path, limit=100, what="CRL")
    with pytest.raises(LifecycleError, match="cannot open config: No such file"):
        read_file(tmp_path / "missing", limit=100, what="config")
    big = tmp_path / "big"
    big.write_bytes(bytes(101))
    with pytest.raises(LifecycleError, match="101 bytes, more than the 100 allowed"):
        read_file(big, limit=100, what="file")


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), limit=st.integers(min_value=0, max_value=300))
def test_read_file_returns_exactly_the_files_within_limit(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, limit: int
) -> None:
    path = tmp_path_factory.mktemp("read") / "f"
    path.write_bytes(data)
    if len(data) <= limit:
        assert read_file(path, limit=limit, what="file") == data
    else:
        with pytest.raises(LifecycleError, match="more than the"):
            read_file(path, limit=limit, what="file")


def test_named_special_files_are_one_line_errors(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(SifError, match="image is a FIFO"):
        SifImage.open(fifo)
    with pytest.raises(SifError, match="image is a FIFO"):
        SifImage.open(fifo, writable=True)
    image = create_image(tmp_path / "a.sif", [json_spec({"a": 1})])
    encrypted, _ = write_pem_pair(tmp_path, "e", "ed25519", passphrase=b"a long passphrase")
    runner = CliRunner()
    for args in (["sign", "--key", str(fifo), str(image)],
                 ["verify", "--key", str(fifo), str(image)],
                 ["verify", "--key", "/dev/null", str(image)],
                 ["sign", "--key", str(write_pem_pair(tmp_path, "k", "ed25519")[0]), str(fifo)],
                 ["sif", "list", str(fifo)],
                 ["sign", "--key", str(encrypted), "--passphrase-file", str(fifo),
                  str(image)],
                 ["db", "upgrade", "--config", str(fifo)]):  # fmt: skip
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("\n") == 1 and "not a regular file" in result.output, args


def test_scan_and_track_skip_fifos_in_directories(
    tmp_path: Path, fifo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "db.sqlite"\n', encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    create_image(tmp_path / "real.sif", [json_spec({"a": 1})])
    for args in (["track", str(tmp_path)], ["scan", str(tmp_path)],
                 ["scan", "--full", str(tmp_path / "*.sif")]):  # fmt: skip
        caplog.clear()
        result = runner.invoke(cli, [args[0], "--config", str(config), *args[1:]])
        assert result.exit_code == 0, (args, result.output)
        assert f"skipping {fifo}: a FIFO, not a regular file" in caplog.text, args
    tracked = runner.invoke(cli, ["track", "--config", str(config), str(fifo)])
    assert tracked.exit_code == 2 and "image is a FIFO" in tracked.output


HOSTILE_PGP = textwrap.dedent("""
    import resource, sys
    from lifecycle.integrity import pgp
    from lifecycle.errors import SignatureFormatError
    data = (pgp.BEGIN_SIGNED + "\\nHash: SHA256\\n\\n").encode() + b"\\n" * (8 << 20) + (
        pgp.BEGIN_SIGNATURE + "\\n\\nAAAA\\n" + pgp.END_SIGNATURE).encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        pgp.decode(data)
    except SignatureFormatError as exc:
        print(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) // 1024)
""")


def test_hostile_pgp_armor_costs_little_memory() -> None:
    out = subprocess.run([sys.executable, "-c", HOSTILE_PGP], capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()  # fmt: skip
    assert "more than the" in out[0]
    assert int(out[1]) < 100, f"decoding took {out[1]} MB more"
    lines = (pgp.BEGIN_SIGNED + "\nHash: SHA256\n\n").encode() + b"\n" * 20_000
    with pytest.raises(pgp.SignatureFormatError, match="20004 lines"):
        pgp.decode(lines + pgp.END_SIGNATURE.encode())
