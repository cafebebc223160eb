"""A PGP ``resign`` set rotating its key, checked after every step by the reference Go
implementation with a keyring built only from what sks serves at that moment.

The reference judges at the real clock, so the rotation is run at simulated times in the last
hours (minutes-long rotation and overlap): every key and signature is already made when it looks.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.clock import utc_now
from lifecycle.config import ImageSetPolicy, KeyAlgorithm, KeyserverSettings, KeyType
from lifecycle.model.fleet import ActionKind, ApplyStatus
from tests.conftest import require_tool
from tests.strategies.conftest import make_fleet
from tests.strategies.test_pgp_lifecycle import served_keyring

pytestmark = pytest.mark.interop
Run = Callable[..., subprocess.CompletedProcess[str]]
ROT = ImageSetPolicy("rot", ("rot-*.sif",), "resign", key_type=KeyType.PGP,
                     key_algorithm=KeyAlgorithm.ED25519, key_rotation=timedelta(minutes=30),
                     overlap=timedelta(minutes=5), certificate_lifetime=timedelta(days=30),
                     crl_lifetime=timedelta(days=365))


def one_armored_keyring(armored: bytes, home: Path, out: Path) -> Path:
    """The reference reads one armor block: gpg merges the served keys into one."""
    gpg = [require_tool("gpg"), "--homedir", str(home), "--batch", "--no-tty"]
    home.mkdir(mode=0o700, exist_ok=True)
    subprocess.run([*gpg, "--import"], input=armored, check=True, capture_output=True)
    out.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True,
                                   capture_output=True).stdout)
    return out


def test_reference_verifies_every_image_after_each_rotation_step(
        tmp_path: Path, sks: Any, sifcheck: Run) -> None:
    fleet = make_fleet(tmp_path, [ROT])
    fleet.policies = replace(fleet.policies, keyservers=KeyserverSettings(
        (sks.url,), timeout=timedelta(seconds=2), retries=0))
    fleet.now = start = utc_now() - timedelta(hours=2)
    fleet.run()
    images = fleet.signed_images("rot", 2)
    steps: list[set[ActionKind]] = []
    for step in range(40):
        seen = {a.kind for _, a, r in fleet.history if r.status is ApplyStatus.DONE}
        steps.append(seen)
        keyring = one_armored_keyring(served_keyring(sks.url, images), tmp_path / f"gpg{step}",
                                      tmp_path / f"served-{step}.asc")
        for image in images:
            result = sifcheck("verify", image, keyring)
            assert result.returncode == 0, (step, fleet.now - start, sorted(seen), result.stderr)
        upcoming = sorted({a.not_before for a in fleet.plan() if a.not_before > fleet.now})
        if not upcoming or upcoming[0] > utc_now() - timedelta(minutes=1):
            break
        fleet.now = upcoming[0]
        fleet.run()
    done = {a.kind for _, a, r in fleet.history if r.status is ApplyStatus.DONE}
    assert {ActionKind.ROTATE, ActionKind.RESIGN, ActionKind.DROP, ActionKind.RETIRE,
            ActionKind.REVOKE_PGP_KEY, ActionKind.PUBLISH_PGP_KEY} <= done, done
