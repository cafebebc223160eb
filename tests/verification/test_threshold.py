"""threshold:N counts distinct public keys, never key files, keyids or certificates (finding 4)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.errors import VerificationError
from lifecycle.integrity.keys import load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.pki.certs import certificate_pem
from lifecycle.verify import TrustMaterial, verify
from tests.keygen import write_pem_pair
from tests.pki.conftest import MemoryCa
from tests.unit.test_signatures import small_image
from tests.verification.conftest import duplicate_signatures, rewrite_envelope


def _signed(tmp_path: Path, *keys: Path) -> Path:
    image = small_image(tmp_path / "image.sif")
    signer = DsseSigner(tuple(load_signing_key(k, no_passphrase) for k in keys))
    sign_image(str(image), signer, SignOptions())
    return image


def _copies(public: Path, n: int) -> tuple[Path, ...]:
    out = [public]
    for i in range(1, n):
        out.append(public.with_name(f"k1copy{i}.pub"))
        shutil.copyfile(public, out[-1])
    return tuple(out)


@pytest.mark.parametrize("n", [2, 3])
def test_duplicated_signature_and_copies_of_one_key_are_one_signer(tmp_path: Path, n: int) -> None:
    private, public = write_pem_pair(tmp_path, "k1", "ed25519")
    image = _signed(tmp_path, private)
    rewrite_envelope(image, duplicate_signatures(n))
    with pytest.raises(VerificationError, match=f"1 of the required {n} distinct keys") as exc:
        verify(image, TrustMaterial(keys=_copies(public, n), policy=f"threshold:{n}"))
    assert exc.value.result is not None and not exc.value.result.ok
    # the same key still satisfies threshold:1, duplicated entry or not
    assert verify(image, TrustMaterial(keys=_copies(public, n), policy="threshold:1")).ok


def test_cli_threshold_with_key_copies_fails(tmp_path: Path) -> None:
    private, public = write_pem_pair(tmp_path, "k1", "ed25519")
    image = _signed(tmp_path, private)
    rewrite_envelope(image, duplicate_signatures(2))
    copy = _copies(public, 2)[1]
    result = CliRunner().invoke(cli, ["verify", "--key", str(public), "--key", str(copy),
                                      "--policy", "threshold:2", str(image)])
    assert result.exit_code == 1, result.output
    assert "1 of the required 2 distinct keys" in result.output


def test_key_and_its_certificate_are_one_signer(tmp_path: Path, memory_ca: MemoryCa) -> None:
    private, public = write_pem_pair(tmp_path, "k1", "ed25519")
    image = _signed(tmp_path, private)
    rewrite_envelope(image, duplicate_signatures(2))
    key = load_signing_key(private, no_passphrase)
    leaf = memory_ca.leaf(start=memory_ca.now - timedelta(days=1), days=30,
                          public=key.public_key())  # type: ignore[arg-type]
    (tmp_path / "k1.crt").write_bytes(certificate_pem(leaf))
    (tmp_path / "inter.pem").write_bytes(certificate_pem(memory_ca.inter))
    (tmp_path / "root.pem").write_bytes(certificate_pem(memory_ca.root))
    trust = TrustMaterial(keys=(public,), certificate=tmp_path / "k1.crt",
                          intermediates=(tmp_path / "inter.pem",), roots=(tmp_path / "root.pem",),
                          crls=tuple(memory_ca.crls()), policy="threshold:2")
    with pytest.raises(VerificationError, match="1 of the required 2 distinct keys"):
        verify(image, trust)


def test_two_distinct_keys_meet_threshold_two(tmp_path: Path) -> None:
    k1, p1 = write_pem_pair(tmp_path, "k1", "ed25519")
    k2, p2 = write_pem_pair(tmp_path, "k2", "ecdsa")
    image = _signed(tmp_path, k1, k2)
    result = verify(image, TrustMaterial(keys=(p1, p2), policy="threshold:2"))
    assert result.ok and len(result.signatures[0].verified_keys()) == 2
