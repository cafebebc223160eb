"""Stock compatibility of an envelope carrying the ephemeral extension (spec 5.6)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.integrity import dsse
from lifecycle.integrity.keys import load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.pki import keys
from lifecycle.sif import SifImage
from lifecycle.verification.extension import EPHEMERAL_KIND
from tests.ephemeral.conftest import IDENTITY, World
from tests.keygen import write_pem_pair

SCHEMES = {keys.KeyAlgorithm.P256: "ecdsa-sha2-nistp256", keys.KeyAlgorithm.ED25519: "ed25519"}


def signature_object(image: Path) -> bytes:
    with SifImage.open(image) as img:
        (desc,) = [d for d in img.objects if d.is_signature]
        return img.read(desc, limit=1 << 20)


def strict_reparse(raw: bytes) -> dict[str, object]:
    """The reference's rules (5.1, 5.6) checked on the raw JSON, with no leniency at all."""
    doc = json.loads(raw)
    assert list(doc) == ["payloadType", "payload", "signatures"]  # 5.1 key order
    assert doc["payloadType"] == dsse.PAYLOAD_TYPE
    base64.b64decode(doc["payload"], validate=True)
    assert doc["signatures"]
    for sig in doc["signatures"]:
        assert set(sig) <= {"keyid", "sig", "extension"} and {"keyid", "sig"} <= set(sig)
        base64.b64decode(sig["sig"], validate=True)
    assert not raw.endswith(b"\n")
    return doc


@pytest.mark.parametrize("algorithm", [keys.KeyAlgorithm.P256, keys.KeyAlgorithm.ED25519])
def test_securesystemslib_verifies_with_the_certificate_key(
        world: World, algorithm: keys.KeyAlgorithm) -> None:
    image = world.image()
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client, algorithm=algorithm)
    raw = signature_object(image)
    doc = strict_reparse(raw)
    (sig,) = doc["signatures"]  # type: ignore[attr-defined]
    assert sig["extension"]["kind"] == EPHEMERAL_KIND
    leaf = x509.load_pem_x509_certificate(sig["extension"]["ext"]["certificates"][0].encode())
    public = leaf.public_key()
    # our parser, under the reference's rules: the keyid is the certificate key's
    envelope = dsse.parse_envelope(raw)
    assert dsse.is_dsse(raw)
    assert envelope.signatures[0].keyid == dsse.keyid(public)  # type: ignore[arg-type]
    assert dsse.verify_pae(public, envelope.signatures[0].sig, envelope.pae())  # type: ignore[arg-type]
    # an independent implementation, given only the ephemeral public key
    peer = SSlibKey.from_crypto(public, keyid=dsse.keyid(public),  # type: ignore[arg-type]
                                scheme=SCHEMES[algorithm])
    assert list(SslibEnvelope.from_dict(json.loads(raw)).verify([peer], 1)) == [peer.keyid]
    tampered = SslibEnvelope.from_dict(json.loads(raw))
    tampered.payload = tampered.payload.replace(b'"version":1', b'"version":2')
    with pytest.raises(VerificationError):
        tampered.verify([peer], 1)


def test_merges_into_an_envelope_that_stock_verify_with_the_other_key_accepts(
        world: World) -> None:
    """A group signed by a long-lived key, then ephemerally: both live in ONE envelope."""
    private, _ = write_pem_pair(world.directory, "long", "ed25519")
    key = load_signing_key(private, no_passphrase)
    image = world.image()
    sign_image(str(image), DsseSigner((key,)), SignOptions())
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)
    raw = signature_object(image)  # still exactly one signature object
    doc = strict_reparse(raw)
    assert len(doc["signatures"]) == 2  # type: ignore[arg-type]
    peer = SSlibKey.from_crypto(key.public_key(), keyid=dsse.keyid(key.public_key()),
                                scheme="ed25519")
    assert list(SslibEnvelope.from_dict(json.loads(raw)).verify([peer], 1)) == [peer.keyid]
