"""Our images against the reference Go implementation (Debian's sylabs/sif) and siftool.

The reference in Debian (sif 2.8.x) signs and verifies PGP; DSSE envelopes are checked by
securesystemslib in test_peers.py and byte-for-byte against the golden files elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.integrity.keys import (
    KeySet,
    load_pgp_signing_key,
    load_signing_key,
    load_verifier_keys,
    no_passphrase,
)
from lifecycle.integrity.sign import DsseSigner, PgpSigner, SignOptions, sign_image
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import SifImage, create_image, deffile_spec, json_spec, partition_spec
from tests.conftest import require_tool
from tests.keygen import write_pem_pair, write_pgp_pair

pytestmark = pytest.mark.interop
Run = Callable[..., subprocess.CompletedProcess[str]]


def fleet_image(path: Path, two_groups: bool = True) -> Path:
    specs = [deffile_spec(b"Bootstrap: scratch\n"), partition_spec(b"hsqs" + bytes(3000)),
             json_spec({"org.label": "x"})]  # fmt: skip
    if two_groups:
        specs.append(partition_spec(b"\x00" * 2048, group=2, name="data"))
    return create_image(path, specs)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_reference_verifies_our_pgp_signatures(sifcheck: Run, tmp_path: Path, kind: str) -> None:
    secret, public = write_pgp_pair(tmp_path, f"signer-{kind}", kind)
    image = fleet_image(tmp_path / "ours.sif")
    sign_image(str(image), PgpSigner(load_pgp_signing_key(secret, no_passphrase)), SignOptions())
    result = sifcheck("verify", image, public)
    assert result.returncode == 0, result.stderr
    _, other = write_pgp_pair(tmp_path, "stranger", kind)
    assert sifcheck("verify", image, other).returncode == 1


def test_reference_rejects_our_image_after_tampering(sifcheck: Run, tmp_path: Path) -> None:
    secret, public = write_pgp_pair(tmp_path, "signer")
    image = fleet_image(tmp_path / "ours.sif")
    sign_image(str(image), PgpSigner(load_pgp_signing_key(secret, no_passphrase)), SignOptions())
    with SifImage.open(image) as img:
        target = img.object(2)
    raw = bytearray(image.read_bytes())
    raw[target.offset + 10] ^= 1
    image.write_bytes(bytes(raw))
    result = sifcheck("verify", image, public)
    assert result.returncode == 1 and "integrity" in result.stderr


def test_reference_verifies_golden_key_signatures_we_made(
    sifcheck: Run, golden_images: Path, golden_keys: Path, tmp_path: Path
) -> None:
    image = Path(shutil.copy(golden_images / "two-groups.sif", tmp_path / "g.sif"))
    signer = PgpSigner(load_pgp_signing_key(golden_keys / "private.asc", no_passphrase))
    sign_image(str(image), signer, SignOptions(groups=[2]))
    sign_image(str(image), signer, SignOptions(groups=[1]))
    assert sifcheck("verify", image, golden_keys / "private.asc").returncode == 0


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_we_verify_what_the_reference_signed(sifcheck: Run, tmp_path: Path, kind: str) -> None:
    secret, public = write_pgp_pair(tmp_path, f"go-{kind}", kind)
    image = fleet_image(tmp_path / "theirs.sif")
    signed = sifcheck("sign", image, secret)
    assert signed.returncode == 0, signed.stderr
    report = verify_image(str(image), load_verifier_keys(public), VerifyOptions())
    assert report.ok, report.failure_summary()
    assert [s.group for s in report.signatures] == [1, 2]
    _, other = write_pgp_pair(tmp_path, "stranger", kind)
    assert not verify_image(str(image), load_verifier_keys(other), VerifyOptions()).ok


def test_reference_parses_every_image_we_write_like_we_do(
    sifcheck: Run, golden_keys: Path, tmp_path: Path
) -> None:
    siftool = require_tool("siftool")
    private, _ = write_pem_pair(tmp_path, "k", "ecdsa")
    images = [fleet_image(tmp_path / "plain.sif"), fleet_image(tmp_path / "dsse.sif"),
              fleet_image(tmp_path / "pgp.sif"), fleet_image(tmp_path / "edited.sif")]  # fmt: skip
    sign_image(str(images[1]), DsseSigner((load_signing_key(private, no_passphrase),)), SignOptions())
    pgp_key = load_pgp_signing_key(golden_keys / "private.asc", no_passphrase)
    sign_image(str(images[2]), PgpSigner(pgp_key), SignOptions())
    with SifImage.open(images[3], writable=True) as img:
        img.delete([3], compact=True)
    for image in images:
        listing = subprocess.run([siftool, "list", str(image)], capture_output=True, text=True)
        assert listing.returncode == 0, listing.stderr
        theirs = sifcheck("list", image)
        assert theirs.returncode == 0, theirs.stderr
        with SifImage.open(image) as img:
            ours = [
                f"{d.id} {d.group} {d.linked_group or d.linked_object or 0} "
                f"{str(d.linked_group is not None).lower()} {d.size}"
                for d in img.objects
            ]
        theirs_rows = [" ".join(line.split()[:4] + line.split()[-1:]) for line in theirs.stdout.splitlines()]
        assert theirs_rows == ours, image.name
        assert len(listing.stdout.splitlines()) == 3 + len(ours)


def test_golden_corpus_agrees_with_reference(sifcheck: Run, golden_images: Path, golden_keys: Path) -> None:
    ring = KeySet()
    ring.merge(load_verifier_keys(golden_keys / "private.asc"))
    for name in ("one-group-signed-pgp.sif", "two-groups-signed-pgp.sif"):
        assert sifcheck("verify", golden_images / name, golden_keys / "private.asc").returncode == 0
        assert verify_image(str(golden_images / name), ring, VerifyOptions()).ok
    legacy = golden_images / "one-group-signed-legacy.sif"
    assert sifcheck("verify", legacy, golden_keys / "private.asc").returncode == 1
    legacy_primary = sifcheck("verify", legacy, golden_keys / "private.asc", "-legacy", "-object", "2")
    assert legacy_primary.returncode == 0, legacy_primary.stderr
    assert not verify_image(str(legacy), ring, VerifyOptions()).ok
    assert verify_image(str(legacy), ring, VerifyOptions(legacy=True)).ok
