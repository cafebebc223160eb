"""The public API: one verify that raises, one sign, typed frozen results, a cheap import."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from lifecycle import (
    LifecycleError,
    Policy,
    PolicyMode,
    SignOptions,
    TrustMaterial,
    VerificationError,
    sign,
    sign_ephemeral,
    verify,
)
from lifecycle.cli.failure import exit_code
from lifecycle.integrity.results import SignatureFormat
from lifecycle.sif.image import SifImage
from lifecycle.verification.identity import IdentityPolicy
from tests.ephemeral.conftest import IDENTITY, World
from tests.keygen import write_pem_pair
from tests.unit.test_signatures import small_image


def _data_bytes(image: Path) -> int:
    with SifImage.open(image) as img:
        return sum(d.size for d in img.objects if not d.is_signature)


def test_verify_returns_a_frozen_typed_result(tmp_path: Path) -> None:
    private, public = write_pem_pair(tmp_path, "k1", "ed25519")
    image = small_image(tmp_path / "image.sif")
    signed = sign(image, keys=(private,))
    assert [g.group for g in signed.signed] == [1] and signed.signer.startswith("SHA256:")
    result = verify(image, TrustMaterial(keys=(public,)))
    assert result.ok and result.failures == ()
    (sig,) = result.signatures
    assert sig.format is SignatureFormat.DSSE and sig.objects == (1, 2)
    assert sig.signers[0].key == str(public)
    with pytest.raises(AttributeError):  # frozen: no caller can flip a verdict
        result.report.ok = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sig.signers[0].ok = False  # type: ignore[misc]


def test_an_untrusted_image_raises_with_the_result(tmp_path: Path) -> None:
    private, _ = write_pem_pair(tmp_path, "k1", "ed25519")
    _, other = write_pem_pair(tmp_path, "k2", "ed25519")
    image = small_image(tmp_path / "image.sif")
    sign(image, keys=(private,))
    with pytest.raises(VerificationError, match="verification failed") as exc:
        verify(image, TrustMaterial(keys=(other,)))
    assert exit_code(exc.value) == 1 and exc.value.path == str(image)
    result = exc.value.result
    assert result is not None and not result.ok and not result.signatures[0].ok
    assert exc.value.reason == result.failure_summary()


def test_bad_input_is_a_usage_error_not_a_verdict(tmp_path: Path) -> None:
    image = small_image(tmp_path / "image.sif")
    with pytest.raises(LifecycleError, match="no verification key given") as exc:
        verify(image, TrustMaterial())
    assert not isinstance(exc.value, VerificationError) and exit_code(exc.value) == 2
    with pytest.raises(LifecycleError, match="timezone-aware"):
        TrustMaterial(keys=("k.pub",), at=datetime(2030, 1, 1))
    with pytest.raises(LifecycleError, match="need --log-key"):
        verify(image, TrustMaterial(keys=("k.pub",), identity=IdentityPolicy(("a@b.org",))))
    with pytest.raises(LifecycleError, match="cannot open key file"):
        verify(image, TrustMaterial(keys=(tmp_path / "missing.pub",)))


def test_policy_given_as_text_is_parsed() -> None:
    assert TrustMaterial(policy="threshold:2").policy == Policy(PolicyMode.THRESHOLD, 2)  # type: ignore[arg-type]
    with pytest.raises(LifecycleError, match="unknown policy"):
        TrustMaterial(policy="most")  # type: ignore[arg-type]


def test_image_data_is_hashed_once_whatever_the_number_of_signatures(tmp_path: Path) -> None:
    pairs = [write_pem_pair(tmp_path, f"k{i}", kind) for i, kind in enumerate(("ed25519", "ecdsa", "rsa"))]
    image = small_image(tmp_path / "image.sif")
    sign(image, keys=tuple(p for p, _ in pairs))
    sign(image, keys=(pairs[0][0],), options=SignOptions(separate_object=True))
    seen: list[int] = []
    result = verify(image, TrustMaterial(keys=tuple(p for _, p in pairs), policy=Policy.parse("any")),
                    progress=seen.append)
    assert len(result.signatures) == 2
    assert sum(seen) == _data_bytes(image)


def test_pgp_signing_and_verifying(golden_keys: Path, tmp_path: Path) -> None:
    image = small_image(tmp_path / "image.sif")
    done = sign(image, keys=(golden_keys / "private.asc",))
    assert done.signed[0].action == "added"
    result = verify(image, TrustMaterial(keys=(golden_keys / "private.asc",)))
    assert result.signatures[0].format is SignatureFormat.PGP
    with pytest.raises(LifecycleError, match="extension goes into a DSSE"):
        from lifecycle.integrity.dsse import Extension

        sign(image, keys=(golden_keys / "private.asc",), extension=Extension("k", {}))


def test_ephemeral_signing_verifies_through_the_log(world: World) -> None:
    image = world.image()
    done = sign_ephemeral(image, IDENTITY, world.ca, world.client)
    assert done.identity == IDENTITY and len(done.entries) == 1
    files = world.trust_files()
    result = verify(image, TrustMaterial(roots=(files["roots"],), crls=(files["crl"],),
                                         log_keys=(files["vkey"],),
                                         identity=IdentityPolicy((IDENTITY,))))
    assert result.longterm is not None and result.longterm[0].ok
    assert result.to_dict()["signatures"][0]["longterm"][0]["identity"] == IDENTITY


def test_the_names_are_the_functions_even_after_the_modules_were_imported() -> None:
    import lifecycle.sign
    import lifecycle.verify

    assert lifecycle.verify is verify and lifecycle.sign is sign


def test_import_is_cheap() -> None:
    """``import lifecycle`` loads no crypto, PGP, path validation, log or database code."""
    code = ("import sys, lifecycle; print(','.join(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'cryptography', 'pgpy', 'pyhanko_certvalidator', 'sqlalchemy', 'click'})))")
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert heavy.stdout.strip() == ""
    code = "import sys, lifecycle; print(sorted(m for m in sys.modules if m.startswith('lifecycle.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for module in ("tlog", "bundles", "integrity.verify", "integrity.sign", "sif", "pki.validate"):
        assert f"'lifecycle.{module}" not in loaded.stdout


def test_every_public_name_is_listed_and_importable() -> None:
    import lifecycle

    assert sorted(lifecycle.__all__) == sorted(["__version__", *lifecycle._HOMES])
    for name in lifecycle.__all__:
        assert getattr(lifecycle, name) is not None
