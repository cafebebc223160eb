"""Three years of a PGP ``reissue`` set and a PGP ``resign`` set publishing to a real sks.

At every event boundary (after the due actions ran, and again just before the next one) every
image verifies with stock rules (every signature object linked to a group must verify, spec
6.4) using only the keys the keyserver serves at that moment, each action is done once, and a
keyserver outage during a rotation delays the re-signing instead of breaking images.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.config import ImageSetPolicy, KeyAlgorithm, KeyserverSettings, KeyType
from lifecycle.integrity.pgp_validity import PgpRevocationReason, expiry_at, revocation_at
from lifecycle.inventory.inspect import inspect_image
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.model.fleet import ActionKind, ApplyStatus
from lifecycle.model.key_state import KeyState
from lifecycle.verify import TrustMaterial, verify
from tests.strategies.conftest import T0, Fleet, make_fleet

YEARS3 = T0 + timedelta(days=3 * 365)
EXTENDED = ImageSetPolicy("ext", ("ext-*.sif",), "reissue", key_type=KeyType.PGP,
                          key_algorithm=KeyAlgorithm.ED25519,
                          certificate_lifetime=timedelta(days=365),
                          crl_lifetime=timedelta(days=365))
ROTATED = ImageSetPolicy("rot", ("rot-*.sif",), "resign", key_type=KeyType.PGP,
                         key_algorithm=KeyAlgorithm.ED25519, key_rotation=timedelta(days=365),
                         overlap=timedelta(days=30), certificate_lifetime=timedelta(days=365),
                         crl_lifetime=timedelta(days=365))
"""CRLs last a year here: the PGP sets need none, and refreshing them would only add rounds."""


def served_keyring(url: str, images: list[Path]) -> bytes:
    """What `singularity verify` would fetch: each signer's key by fingerprint."""
    signers = {s for p in images for sig in inspect_image(p).signatures for s in sig.signers}
    client = HkpClient(url, timeout=timedelta(seconds=5), retries=0)
    keys = [client.get(fpr) for fpr in sorted(signers)]
    assert None not in keys, f"a signer's key is not on the keyserver: {sorted(signers)}"
    return "".join(str(k) for k in keys).encode()


def check_all(images: list[Path], keyring: bytes, fleet: Fleet, at: Any) -> None:
    for image in images:
        try:
            verify(image, TrustMaterial(pgp_keyring=keyring, at=at))
        except Exception as exc:  # the message names the failing signature
            raise AssertionError(f"{image.name} does not verify at {at} "
                                 f"(after {fleet.history[-3:]}): {exc}") from None


@pytest.mark.slow
def test_three_years_of_pgp_sets_with_a_keyserver_outage(tmp_path: Path, sks: Any) -> None:
    fleet = make_fleet(tmp_path, [EXTENDED, ROTATED])
    fleet.policies = replace(fleet.policies, keyservers=KeyserverSettings(
        (sks.url,), timeout=timedelta(seconds=2), retries=0))
    fleet.run()  # provision both sets; publish their keys
    images = fleet.signed_images("ext", 2) + fleet.signed_images("rot", 2)
    keyring = served_keyring(sks.url, images)
    check_all(images, keyring, fleet, fleet.now)
    outage_done = False
    resigned_while_down = 0
    while fleet.now < YEARS3:
        upcoming = sorted({a.not_before for a in fleet.plan() if a.not_before > fleet.now})
        nxt = upcoming[0] if upcoming else YEARS3
        check_all(images, keyring, fleet, nxt - timedelta(seconds=1))  # nothing lapsed meanwhile
        fleet.now = nxt
        rotation_due = any(a.kind is ActionKind.ROTATE and a.ready(fleet.now)
                           for a in fleet.plan())
        if rotation_due and not outage_done and fleet.now > T0 + timedelta(days=300):
            outage_done = True
            sks.stop()
            for _ in range(3):  # three days of outage: the rotation happens, nothing is signed
                fleet.run()
                resigned_while_down += sum(1 for _, a, r in fleet.history[-20:] if a.kind is
                                           ActionKind.RESIGN and r.status is ApplyStatus.DONE)
                check_all(images, keyring, fleet, fleet.now)  # the old key still serves them
                fleet.now += timedelta(days=1)
            assert any(r.status is ApplyStatus.FAILED and a.kind is ActionKind.PUBLISH_PGP_KEY
                       for _, a, r in fleet.history)
            sks.start()
        fleet.run()
        keyring = served_keyring(sks.url, images)
        check_all(images, keyring, fleet, fleet.now)
    assert outage_done and resigned_while_down == 0
    done = [a for _, a, r in fleet.history if r.status is ApplyStatus.DONE]
    assert not [k for k, n in Counter(a.key for a in done).items() if n > 1], "an action ran twice"
    kinds = Counter(a.kind for a in done)
    assert kinds[ActionKind.ROTATE] >= 2 and kinds[ActionKind.EXTEND] >= 5, kinds
    assert kinds[ActionKind.RESIGN] >= 4 and kinds[ActionKind.DROP] >= 4, kinds
    assert kinds[ActionKind.REVOKE_PGP_KEY] >= 1 and kinds[ActionKind.PUBLISH_PGP_KEY] >= 10, kinds
    failed = [(a.kind, r.detail) for _, a, r in fleet.history
              if r.status not in (ApplyStatus.DONE, ApplyStatus.SKIPPED)]
    assert {k for k, _ in failed} <= {ActionKind.PUBLISH_PGP_KEY}, failed
    # the extended set kept its one key; the rotated one revoked each retired key (superseded)
    client = HkpClient(sks.url)
    for key in fleet.state().keys:
        served = client.get(key.fingerprint)
        if key.image_set == "ext":
            assert key.state is KeyState.ACTIVE and expiry_at(served) > fleet.now
        elif key.state is KeyState.RETIRED:
            assert revocation_at(served)[1] is PgpRevocationReason.SUPERSEDED
    assert {k.image_set for k in fleet.state().keys if k.state is KeyState.ACTIVE} == {
        "ext", "rot"}
