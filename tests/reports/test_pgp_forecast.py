"""The forecast of PGP-signed images: "stock verify with the keyserver's keys until ...", checked
by verifying with the published key just before and just after that date."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import Config, ImageSetPolicy, KeyAlgorithm, KeyType
from lifecycle.errors import VerificationError
from lifecycle.model.fleet import ActionKind
from lifecycle.reports import build_report, render
from lifecycle.verify import TrustMaterial, verify
from tests.strategies.conftest import make_fleet

EXT = ImageSetPolicy("ext", ("ext-*.sif",), "reissue", key_type=KeyType.PGP,
                     key_algorithm=KeyAlgorithm.ED25519, certificate_lifetime=timedelta(days=90))


def test_pgp_horizon_is_the_signers_key_expiry_and_the_extension_keeps_it(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [EXT])
    fleet.run()
    (image,) = fleet.signed_images("ext", 1)
    fleet.now += timedelta(days=10)
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    data = build_report(fleet.engine, config, fleet.now, verify_images=True)
    (f,) = data.forecasts
    (key,) = [k for k in fleet.state().keys if k.image_set == "ext"]
    assert key.expires_at is not None
    assert f.certificate.verifies and f.certificate.until == key.expires_at
    assert f.certificate.basis.startswith("stock verify with the keyserver's keys until ")
    assert f.tool.until is None and f.keeps_verifiable is not None
    assert f.keeps_verifiable.kind is ActionKind.EXTEND
    published = fleet.ca.keys.public_bytes(key.fingerprint)
    verify(image, TrustMaterial(pgp_keyring=published, at=key.expires_at - timedelta(seconds=1)))
    with pytest.raises(VerificationError, match="expired"):
        verify(image, TrustMaterial(pgp_keyring=published, at=key.expires_at + timedelta(1)))
    assert "the keyserver's keys until" in render(data, "md").decode()
    assert f"PGP expiry {key.expires_at:%Y-%m-%d}" in render(data, "html").decode()  # timeline
    fleet.now = f.keeps_verifiable.not_before
    fleet.run()  # the extension: a new self-signature, same fingerprint
    extended = fleet.ca.keys.public_bytes(key.fingerprint)
    verify(image, TrustMaterial(pgp_keyring=extended, at=key.expires_at + timedelta(1)))
    later = build_report(fleet.engine, config, fleet.now, verify_images=True).forecasts[0]
    assert later.certificate.until == fleet.now + EXT.certificate_lifetime
