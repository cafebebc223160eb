"""``kill -9`` of ``sif-lifecycle sign`` at random moments never costs an image its signatures.

The fault-injection test (test_crash_safety.py) stops the writer at each write; this one kills a
real process at random times (fixed seed, so a failure reproduces) while it adds a second key to
a signed image. After every kill the image loads and verifies with the key that signed it before;
if the signing finished, with the new key too.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.sign import sign
from lifecycle.verify import TrustMaterial, verify
from tests.keygen import write_pem_pair

SEED = 20261201
TRIALS = 12


@pytest.mark.slow
def test_kill_9_during_sign_leaves_a_verifiable_image(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    old_private, old_public = write_pem_pair(tmp_path, "old", "ed25519")
    new_private, new_public = write_pem_pair(tmp_path, "new", "p256")
    base = create_image(tmp_path / "base.sif", [partition_spec(b"hsqs" + rng.randbytes(8 << 20)),
                                                json_spec({"v": 1})])
    sign(base, keys=(old_private,))
    # how long a whole signing takes here: the kills are spread over it
    started = time.monotonic()
    probe = tmp_path / "probe.sif"
    shutil.copy(base, probe)
    subprocess.run(_command(new_private, probe), check=True, capture_output=True, timeout=120)
    span = time.monotonic() - started
    finished = 0
    for trial in range(TRIALS):
        image = tmp_path / f"trial-{trial}.sif"
        shutil.copy(base, image)
        process = subprocess.Popen(_command(new_private, image), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.1) * span)
        process.kill()
        finished += process.wait(timeout=60) == 0
        verify(image, TrustMaterial(keys=(old_public,)))  # raises if the old signature broke
        if process.returncode == 0:
            verify(image, TrustMaterial(keys=(new_public,)))
    assert finished < TRIALS  # at least one run was really killed before it finished


def _command(key: Path, image: Path) -> list[str]:
    return [sys.executable, "-m", "lifecycle.cli.main", "sign", "--key", str(key), str(image)]
