"""Check images against a publish directory, as an offline relying party would."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from lifecycle.integrity.keys import KeySet, load_verifier_keys
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.pki.certs import load_certificate
from lifecycle.pki.validate import validate_signing_certificate
from lifecycle.store.ca_service import CaService


def published_keys(directory: Path) -> KeySet:
    keys = KeySet()
    for path in sorted((directory / "keys").glob("*.pub")):
        keys.merge(load_verifier_keys(path))
    return keys


def check_image(image: Path, directory: Path, at: datetime) -> list[str]:
    """Fingerprints of the published keys whose signatures verify; raises if the image fails."""
    report = verify_image(str(image), published_keys(directory), VerifyOptions())
    assert report.ok, f"{image.name} at {at:%Y-%m-%d}: {report.failure_summary()}"
    labels = {s.key for r in report.signatures for s in r.signers if s.ok and s.key}
    return sorted(Path(label).stem for label in labels)


def check_certificate(fingerprint: str, directory: Path, at: datetime) -> None:
    """The key's published certificate validates at ``at`` with the published chain and CRLs."""
    leaf = load_certificate((directory / "certificates" / f"{fingerprint}.pem").read_bytes(),
                            path=fingerprint)
    inter = load_certificate((directory / "intermediate.pem").read_bytes(), path="intermediate")
    root = load_certificate((directory / "root.pem").read_bytes(), path="root")
    crls = [(directory / "crl" / f"{role}.crl").read_bytes() for role in ("root", "intermediate")]
    validate_signing_certificate(leaf, [inter], [root], at=at, crls=crls)


def check_stock_ocsp(stockocsp: Callable[..., subprocess.CompletedProcess[str]], ca: CaService,
                     fingerprint: str, directory: Path, at: datetime) -> None:
    """Stock ``--ocsp-verify`` (tests/interop/stockocsp) accepts the published chain at ``at``,
    with the leaf's and the intermediate's responses as ``serve`` signs them at ``at``."""
    leaf_file = directory / "certificates" / f"{fingerprint}.pem"
    rows = [ca.find(load_certificate(f.read_bytes(), path=str(f)).serial_number)
            for f in (leaf_file, directory / "intermediate.pem")]
    answers = directory / f"ocsp-{at:%Y%m%dT%H%M%S}"
    answers.mkdir(exist_ok=True)
    for serial, der in ca.presigned_ocsp(rows, at).items():
        (answers / f"{serial}.der").write_bytes(der)
    done = stockocsp("-leaf", leaf_file, "-intermediates", directory / "intermediate.pem",
                     "-roots", directory / "root.pem", "-at", at.isoformat(),
                     "-responses", answers)
    assert done.returncode == 0, f"{fingerprint} at {at}: {done.stdout}"
    assert done.stdout.count("ocsp ok:") == 2, done.stdout


def peer_verify(image: Path, public_key_file: Path) -> None:
    """securesystemslib (an independent DSSE implementation) accepts every envelope with the key.

    Its verifier takes one key and a threshold of 1, as stock ``singularity verify --key`` does.
    """
    import json

    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import SSlibKey

    from lifecycle.integrity import dsse
    from tests.interop.test_peers import SSLIB_SCHEMES, signature_objects

    public = load_verifier_keys(public_key_file).dsse[0].key
    kind = {"Ed25519PublicKey": "ed25519", "RSAPublicKey": "rsa"}.get(
        type(public).__name__.lstrip("_"), "ecdsa")
    peer = SSlibKey.from_crypto(public, keyid=dsse.keyid(public), scheme=SSLIB_SCHEMES[kind])
    objects = signature_objects(image)
    assert objects, image
    for raw in objects:
        accepted = SslibEnvelope.from_dict(json.loads(raw)).verify([peer], 1)
        assert list(accepted) == [dsse.keyid(public)]
