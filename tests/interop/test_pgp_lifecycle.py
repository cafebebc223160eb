"""PGP key maintenance against peers: gpg reads our extended expiry and revocations, and the
reference Go implementation verifies images with the keyring as it stands after each step."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.integrity.keys import PgpSigningKey
from lifecycle.integrity.pgp_validity import PgpRevocationReason
from lifecycle.integrity.sign import PgpSigner, SignOptions, sign_image
from lifecycle.pki.pgp import PgpAlgorithm, generate_pgp_key, load_pgp_key, pgp_public_armor
from lifecycle.pki.pgp_maintenance import extend_expiry, revoke
from lifecycle.sif import SifImage
from tests.conftest import require_tool
from tests.interop.test_peers import new_image, signature_objects

pytestmark = pytest.mark.interop
Run = Callable[..., subprocess.CompletedProcess[str]]
DAY = timedelta(days=1)


class Gpg:
    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700)
        self.base = [require_tool("gpg"), "--homedir", str(home), "--batch", "--no-tty",
                     "--pinentry-mode", "loopback", "--passphrase", "pw"]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120)
        assert not check or done.returncode == 0, done.stderr
        return done

    def colons(self, fingerprint: str) -> list[list[str]]:
        out = self("--with-colons", "--fixed-list-mode", "--list-keys", fingerprint).stdout
        return [line.split(":") for line in out.splitlines()]


def _seconds(when: datetime) -> str:
    return str(int(when.timestamp()))


def test_gpg_sees_the_extension_of_its_own_key_with_a_subkey(tmp_path: Path) -> None:
    """A key made by gpg (primary + encryption subkey, as `singularity key newpair` makes)."""
    gpg = Gpg(tmp_path / "gnupg")
    gpg("--quick-gen-key", "Site <site@example.org>", "ed25519", "sign", "10d")
    fpr = next(f[9] for f in gpg.colons("site@example.org") if f[0] == "fpr")
    gpg("--quick-add-key", fpr, "cv25519", "encr", "10d")
    secret = gpg("--armor", "--export-secret-keys", fpr).stdout.encode()
    now = datetime.now(UTC)
    key = extend_expiry(load_pgp_key(secret, path="secret.asc"), "pw", now + 400 * DAY, now=now)
    (tmp_path / "ext.asc").write_bytes(pgp_public_armor(key))
    gpg("--import", str(tmp_path / "ext.asc"))
    rows = gpg.colons(fpr)
    pub = next(r for r in rows if r[0] == "pub")
    sub = next(r for r in rows if r[0] == "sub")
    assert pub[1] != "e" and abs(int(pub[6]) - int(_seconds(now + 400 * DAY))) <= 1
    assert sub[1] != "e" and abs(int(sub[6]) - int(_seconds(now + 400 * DAY))) <= 1


@pytest.mark.parametrize("algorithm", [PgpAlgorithm.ED25519, PgpAlgorithm.RSA4096])
def test_gpg_and_the_reference_follow_extension_and_revocation(
        sifcheck: Run, tmp_path: Path, algorithm: PgpAlgorithm) -> None:
    gpg = Gpg(tmp_path / "gnupg")
    now = datetime.now(UTC)
    key = generate_pgp_key(algorithm, "Set <set@example.org>", "pw", expires=now + 30 * DAY,
                           now=now - DAY)
    fpr = str(key.fingerprint).replace(" ", "")
    image = new_image(tmp_path / "a.sif")
    sign_image(str(image), PgpSigner(PgpSigningKey(key, b"pw", "set.asc")), SignOptions())
    keyring = tmp_path / "served.asc"

    def serve(k: object) -> None:  # what a keyserver would hand out now
        keyring.write_bytes(pgp_public_armor(k))  # type: ignore[arg-type]
        gpg("--import", str(keyring))

    serve(key)
    assert sifcheck("verify", image, keyring).returncode == 0
    extend_expiry(key, "pw", now + 700 * DAY, now=now)
    serve(key)
    pub = next(r for r in gpg.colons(fpr) if r[0] == "pub")
    assert abs(int(pub[6]) - int(_seconds(now + 700 * DAY))) <= 1
    (payload,) = signature_objects(image)
    (tmp_path / "payload.asc").write_bytes(payload)
    verified = gpg("--verify", str(tmp_path / "payload.asc"))
    assert "Good signature" in verified.stderr
    assert sifcheck("verify", image, keyring).returncode == 0, "extension broke the image"
    revoke(key, "pw", PgpRevocationReason.SUPERSEDED, now=now)
    serve(key)
    pub = next(r for r in gpg.colons(fpr) if r[0] == "pub")
    assert pub[1] == "r"
    assert "revoked" in gpg("--verify", str(tmp_path / "payload.asc"), check=False).stderr
    refused = sifcheck("verify", image, keyring)
    assert refused.returncode == 1 and "revoked" in refused.stderr
    with SifImage.open(image) as img:
        assert sum(d.is_signature for d in img.objects) == 1
