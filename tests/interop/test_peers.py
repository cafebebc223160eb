"""Independent verifiers of what we write: gpg for clear-signs, securesystemslib for DSSE."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from lifecycle.integrity import dsse
from lifecycle.integrity.keys import load_pgp_signing_key, load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, PgpSigner, SignOptions, sign_image
from lifecycle.sif import SifImage, create_image, json_spec, partition_spec
from tests.conftest import require_tool
from tests.keygen import write_pem_pair, write_pgp_pair

pytestmark = pytest.mark.interop
SSLIB_SCHEMES = {"ed25519": "ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "rsa-pkcs1v15-sha256"}


def signature_objects(image: Path) -> list[bytes]:
    with SifImage.open(image) as img:
        return [img.read(d, limit=1 << 20) for d in img.objects if d.is_signature]


def new_image(path: Path) -> Path:
    return create_image(path, [partition_spec(b"hsqs" + bytes(500)), json_spec({"k": "v"})])


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_gpg_accepts_our_clear_signed_payloads(tmp_path: Path, kind: str) -> None:
    gpg = require_tool("gpg")
    secret, public = write_pgp_pair(tmp_path, f"gpg-{kind}", kind)
    image = new_image(tmp_path / "a.sif")
    sign_image(str(image), PgpSigner(load_pgp_signing_key(secret, no_passphrase)), SignOptions())
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    base = [gpg, "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run([*base, "--import", str(public)], check=True, capture_output=True)
    (payload,) = signature_objects(image)
    signed = tmp_path / "payload.asc"
    signed.write_bytes(payload)
    result = subprocess.run([*base, "--verify", str(signed)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Good signature" in result.stderr
    signed.write_bytes(payload.replace(b'"version":1', b'"version":2'))
    assert subprocess.run([*base, "--verify", str(signed)], capture_output=True).returncode != 0


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_securesystemslib_verifies_our_envelopes(tmp_path: Path, kind: str) -> None:
    private, _ = write_pem_pair(tmp_path, kind, kind)
    other, _ = write_pem_pair(tmp_path, "other", "ed25519")
    key = load_signing_key(private, no_passphrase)
    image = new_image(tmp_path / "a.sif")
    extension = dsse.Extension("https://example.org/evidence", {"entry": 1})
    sign_image(str(image), DsseSigner((load_signing_key(other, no_passphrase),), extension), SignOptions())
    sign_image(str(image), DsseSigner((key,)), SignOptions())
    (raw,) = signature_objects(image)
    envelope = SslibEnvelope.from_dict(json.loads(raw))
    assert envelope.payload_type == dsse.PAYLOAD_TYPE
    peer_key = SSlibKey.from_crypto(key.public_key(), keyid=dsse.keyid(key.public_key()),
                                    scheme=SSLIB_SCHEMES[kind])  # fmt: skip
    accepted = envelope.verify([peer_key], 1)
    assert list(accepted) == [dsse.keyid(key.public_key())]
    tampered = SslibEnvelope.from_dict(json.loads(raw))
    tampered.payload = tampered.payload.replace(b'"version":1', b'"version":2')
    with pytest.raises(VerificationError):
        tampered.verify([peer_key], 1)
