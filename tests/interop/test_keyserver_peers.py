"""Apptainer's HKP client and the reference Go verifier against keys we published to sks.

What we push (a key, its extended expiry, a revocation) is what `apptainer key pull/search`
gets back, and an image signed with the key verifies with the reference implementation using
only the keyring the keyserver served.
"""

from __future__ import annotations

import warnings
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.integrity.keys import PgpSigningKey
from lifecycle.integrity.pgp import fingerprint
from lifecycle.integrity.sign import PgpSigner, SignOptions, sign_image
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.sif import create_image, json_spec, partition_spec
from tests.keygen import new_pgp_key

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pgpy.constants import RevocationReason

pytestmark = pytest.mark.interop


def test_apptainer_client_pulls_and_searches_what_we_published(
        tmp_path: Path, sks: Any, keyclient: Any, sifcheck: Any) -> None:
    key = new_pgp_key("ed25519", "Release Bot")
    fpr = fingerprint(key)
    ours = HkpClient(sks.url)
    ours.add(str(key.pubkey).encode())
    image = create_image(tmp_path / "a.sif", [partition_spec(b"hsqs" + bytes(500)),
                                              json_spec({"k": "v"})])
    sign_image(str(image), PgpSigner(PgpSigningKey(key, None, "test")), SignOptions())

    served = tmp_path / "served.asc"
    pulled = keyclient("pull", sks.hkp, fpr, served)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines() == [f"key {fpr} expires never revoked false"]
    checked = sifcheck("verify", image, served)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The expiry extended (a new self-signature), pushed again: the client sees the new expiry.
    uid = key.userids[0]
    uid |= key.certify(uid, key_expiration=timedelta(days=730))
    ours.add(str(key.pubkey).encode())
    expires = (key.created.replace(tzinfo=UTC, microsecond=0) + timedelta(days=730))
    pulled = keyclient("pull", sks.hkp, fpr, served)
    assert pulled.stdout.splitlines() == [
        f"key {fpr} expires {expires:%Y-%m-%dT%H:%M:%SZ} revoked false"], pulled.stderr
    assert sifcheck("verify", image, served).returncode == 0

    index = keyclient("search", sks.url, "signer@example.org")
    assert index.returncode == 0, index.stderr
    assert any(line.startswith(f"pub:{fpr}:22:256:") for line in index.stdout.splitlines())
    assert "uid:Release Bot <signer@example.org>:" in index.stdout

    # Revoked (superseded) and pushed: the client sees the revocation, the reference refuses it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgpy: the hash is not in the key's preferences
        key |= key.revoke(key, reason=RevocationReason.Superseded, comment="rotated")
    ours.add(str(key.pubkey).encode())
    pulled = keyclient("pull", sks.hkp, fpr, served)
    assert pulled.stdout.splitlines() == [
        f"key {fpr} expires {expires:%Y-%m-%dT%H:%M:%SZ} revoked true"], pulled.stderr
    assert sifcheck("verify", image, served).returncode != 0
    assert list(ours.get(fpr).revocation_signatures)


def test_what_apptainer_pushes_we_pull(tmp_path: Path, sks: Any, keyclient: Any) -> None:
    key = new_pgp_key("ed25519", "Site Admin")
    exported = tmp_path / "k.asc"
    exported.write_text(str(key.pubkey))
    pushed = keyclient("push", sks.url, exported)
    assert pushed.returncode == 0, pushed.stderr
    assert fingerprint(HkpClient(sks.url).get(fingerprint(key))) == fingerprint(key)
