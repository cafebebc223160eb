"""``verify IMAGE...`` on a worker pool: results in the order given, the worst status wins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from tests.conftest import SignedImage


@pytest.fixture
def images(small_signed_images: dict[str, SignedImage], tmp_path: Path) -> list[Path]:
    """Four copies of the small DSSE-signed image; the third has one data byte changed."""
    out = [Path(shutil.copy(small_signed_images["dsse"].path, tmp_path / f"i{n}.sif")) for n in range(4)]
    data = bytearray(out[2].read_bytes())
    data[data.index(b"xyz")] ^= 1
    out[2].write_bytes(bytes(data))
    return out


def verify(key: Path, *args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", "--key", str(key), *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_image_judged_in_order(images: list[Path], golden_keys: Path, jobs: str) -> None:
    key = golden_keys / "ed25519-public.pem"
    status, output = verify(key, "--jobs", jobs, *images)
    assert status == 1
    verdicts = [line for line in output.splitlines()
                if line.startswith(("Container verified:", "Error:"))]  # fmt: skip
    assert verdicts == [
        f"Container verified: {images[0]}",
        f"Container verified: {images[1]}",
        f"Error: {images[2]}: verification failed: object group 2: signature object 5: "
        "data object integrity compromised: 3",
        f"Container verified: {images[3]}",
    ]
    assert output.splitlines()[-1] == "3 of 4 images verified"
    assert verify(key, "--jobs", jobs, images[0], images[3]) == (0, verify(key, images[0])[1]
                                                                + verify(key, images[3])[1]
                                                                + "2 of 2 images verified\n")


def test_an_unreadable_image_is_bad_input_and_does_not_stop_the_others(
    images: list[Path], golden_keys: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.sif"
    junk.write_bytes(b"not a SIF image")
    status, output = verify(golden_keys / "ed25519-public.pem", images[0], junk, images[2], images[1])
    assert status == 2  # bad input outranks a failed check
    assert f"Error: {junk}: header:" in output
    assert output.count("Container verified:") == 2
    assert output.splitlines()[-1] == "2 of 4 images verified"
