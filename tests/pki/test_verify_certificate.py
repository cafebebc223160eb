"""`verify --certificate`: the signing key's certificate validated at a point in time.

The re-issuance strategy rests on this: an image signed once stays verifiable with each
generation of certificate for the same key, each within its own validity.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lifecycle.cli.main import cli
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.pki import crl, keys
from tests.pki.conftest import MemoryCa


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def signed(memory_ca: MemoryCa, golden_images: Path, tmp_path: Path) -> dict[str, Path]:
    """An image signed by one key, two certificate generations for it, CA files and CRLs."""
    key = keys.generate_private_key(keys.KeyAlgorithm.ED25519)
    image = Path(shutil.copy(golden_images / "one-group.sif", tmp_path / "image.sif"))
    sign_image(str(image), DsseSigner((key,)), SignOptions())  # type: ignore[arg-type]
    now = memory_ca.now
    old = memory_ca.leaf(start=now - timedelta(days=200), days=90, public=key.public_key())
    new = memory_ca.leaf(start=now - timedelta(days=10), days=90, public=key.public_key())
    files = {"image": image}
    for name, data in {
        "old.pem": pem(old), "new.pem": pem(new), "root.pem": pem(memory_ca.root),
        "inter.pem": pem(memory_ca.inter),
    }.items():  # fmt: skip
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    root_crl, inter_crl = memory_ca.crls()
    revoked = memory_ca.crls([crl.RevokedEntry(new.serial_number, now - timedelta(days=1))])[1]
    for name, data in (("root.crl", root_crl), ("inter.crl", inter_crl), ("revoked.crl", revoked)):
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    return files


def run(files: dict[str, Path], leaf: str, *extra: str,
        crls: tuple[str, ...] = ("root.crl", "inter.crl")) -> Result:  # fmt: skip
    args = ["verify", "--certificate", str(files[leaf]),
            "--certificate-intermediates", str(files["inter.pem"]),
            "--certificate-roots", str(files["root.pem"])]  # fmt: skip
    for name in crls:
        args += ["--crl", str(files[name])]
    return CliRunner().invoke(cli, [*args, *extra, str(files["image"])])


def test_reissued_certificate_verifies_like_the_original(
    signed: dict[str, Path], memory_ca: MemoryCa
) -> None:
    current = run(signed, "new.pem")
    assert current.exit_code == 0, current.output
    assert "Container verified" in current.output
    expired = run(signed, "old.pem")
    assert expired.exit_code == 1 and "expired" in expired.output
    back_then = (memory_ca.now - timedelta(days=150)).isoformat()
    assert run(signed, "old.pem", "--at", back_then).exit_code == 0
    not_yet = run(signed, "new.pem", "--at", back_then)
    assert not_yet.exit_code == 1 and "not yet valid" in not_yet.output


def test_certificate_details_in_json(signed: dict[str, Path]) -> None:
    result = run(signed, "new.pem", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["certificate"]["path"] == ["CN=Signer", "CN=Test Signing", "CN=Test Root"]
    assert doc["signatures"][0]["signers"][0]["key"] == str(signed["new.pem"])


def test_revoked_certificate_fails(signed: dict[str, Path]) -> None:
    result = run(signed, "new.pem", crls=("root.crl", "revoked.crl"))
    assert result.exit_code == 1 and "revoked" in result.output


def test_revocation_evidence_is_required_unless_soft_fail(signed: dict[str, Path]) -> None:
    hard = run(signed, "new.pem", crls=())
    assert hard.exit_code == 1, hard.output
    soft = run(signed, "new.pem", "--revocation", "soft-fail", crls=())
    assert soft.exit_code == 0, soft.output


def test_a_ca_certificate_is_not_a_signing_certificate(signed: dict[str, Path]) -> None:
    result = run(signed, "inter.pem")
    assert result.exit_code == 2
    assert "code" in result.output.lower() and len(result.output.strip().splitlines()) == 1
