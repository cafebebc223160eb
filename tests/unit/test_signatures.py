"""Signing and verification: golden corpus, byte-exact reproduction, merging, policies, keys."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.errors import KeyMaterialError, SigningError
from lifecycle.integrity import dsse
from lifecycle.integrity.keys import (
    KeySet,
    load_pgp_signing_key,
    load_signing_key,
    load_verifier_keys,
    no_passphrase,
)
from lifecycle.integrity.sign import DsseSigner, PgpSigner, SignOptions, sign_image
from lifecycle.integrity.verify import Policy, VerifyOptions, verify_image
from lifecycle.sif import DataType, ObjectSpec, SifImage, create_image, json_spec, partition_spec
from lifecycle.sif.format import Descriptor
from tests.keygen import write_pem_pair, write_pgp_pair

GOLDEN_SIGNING_TIME = datetime.fromtimestamp(1593475316, UTC)
Pem = dict[str, tuple[Path, Path]]


def keys(*paths: Path) -> KeySet:
    merged = KeySet()
    for path in paths:
        merged.merge(load_verifier_keys(path))
    return merged


def dsse_signer(*paths: Path, extension: dsse.Extension | None = None) -> DsseSigner:
    return DsseSigner(tuple(load_signing_key(p, no_passphrase) for p in paths), extension)


def small_image(path: Path, groups: int = 1) -> Path:
    specs = [partition_spec(b"hsqs" + bytes(100)), json_spec({"app": "demo"})]
    if groups > 1:
        specs.append(ObjectSpec(DataType.GENERIC, b"second group", group=2))
    return create_image(path, specs)


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {kind: write_pem_pair(tmp_path, kind, kind) for kind in ("ed25519", "ecdsa", "rsa")}


# --------------------------------------------------------------------------- golden corpus


@pytest.mark.parametrize("base", ["one-group", "two-groups"])
def test_golden_signed_images_verify_with_right_keys_only(
    golden_images: Path, golden_keys: Path, base: str
) -> None:
    pgp_ring = keys(golden_keys / "private.asc")
    assert verify_image(str(golden_images / f"{base}-signed-pgp.sif"), pgp_ring, VerifyOptions()).ok
    for good in ("ed25519-public.pem", "rsa-public.pem"):
        report = verify_image(str(golden_images / f"{base}-signed-dsse.sif"), keys(golden_keys / good),
                              VerifyOptions())  # fmt: skip
        assert report.ok, report.failure_summary()
    wrong = verify_image(str(golden_images / f"{base}-signed-dsse.sif"),
                         keys(golden_keys / "ecdsa-public.pem"), VerifyOptions())  # fmt: skip
    assert not wrong.ok
    assert "no signature in the envelope verifies" in wrong.failure_summary()
    mismatch = verify_image(str(golden_images / f"{base}-signed-pgp.sif"),
                            keys(golden_keys / "rsa-public.pem"), VerifyOptions())  # fmt: skip
    assert "key material not provided for PGP clear-sign signature" in mismatch.failure_summary()


def test_golden_pgp_fails_with_another_pgp_key(golden_images: Path, tmp_path: Path) -> None:
    _, public = write_pgp_pair(tmp_path, "other")
    report = verify_image(str(golden_images / "one-group-signed-pgp.sif"), keys(public), VerifyOptions())
    assert not report.ok
    assert "no key in keyring has key ID A20C27EE7FF7BA84" in report.failure_summary()


def test_unsigned_golden_images_fail(golden_images: Path, golden_keys: Path) -> None:
    ring = keys(golden_keys / "private.asc")
    assert "signature not found for object group 1" in verify_image(
        str(golden_images / "one-group.sif"), ring, VerifyOptions()
    ).failure_summary()
    empty = verify_image(str(golden_images / "empty.sif"), ring, VerifyOptions())
    assert empty.errors == ("no objects in image",)


@pytest.mark.parametrize(
    ("name", "options", "ok"),
    [
        ("one-group-signed-legacy.sif", VerifyOptions(), False),
        ("one-group-signed-legacy.sif", VerifyOptions(legacy=True), True),
        ("one-group-signed-legacy-group.sif", VerifyOptions(legacy=True), False),
        ("one-group-signed-legacy-group.sif", VerifyOptions(legacy=True, groups=[1]), True),
        ("one-group-signed-legacy-all.sif", VerifyOptions(legacy=True, all_objects=True), True),
        ("two-groups-signed-legacy-all.sif", VerifyOptions(legacy=True, all_objects=True), False),
        ("two-groups-signed-legacy.sif", VerifyOptions(legacy=True), True),
        ("two-groups-signed-legacy-group.sif", VerifyOptions(legacy=True, groups=[1]), True),
    ],
)
def test_legacy_signatures_only_with_legacy_insecure(
    golden_images: Path, golden_keys: Path, name: str, options: VerifyOptions, ok: bool
) -> None:
    report = verify_image(str(golden_images / name), keys(golden_keys / "private.asc"), options)
    assert report.ok is ok, report.failure_summary()
    if ok:
        assert {s.format for s in report.signatures} == {"legacy"}


@pytest.mark.parametrize("base", ["one-group", "two-groups"])
def test_deterministic_signing_reproduces_golden_bytes(
    golden_images: Path, golden_keys: Path, tmp_path: Path, base: str
) -> None:
    dsse_copy = shutil.copy(golden_images / f"{base}.sif", tmp_path / "d.sif")
    signer = dsse_signer(golden_keys / "ed25519-private.pem", golden_keys / "rsa-private.pem")
    sign_image(str(dsse_copy), signer, SignOptions(deterministic=True))
    assert Path(dsse_copy).read_bytes() == (golden_images / f"{base}-signed-dsse.sif").read_bytes()
    pgp_copy = shutil.copy(golden_images / f"{base}.sif", tmp_path / "p.sif")
    pgp_key = load_pgp_signing_key(golden_keys / "private.asc", no_passphrase)
    sign_image(str(pgp_copy), PgpSigner(pgp_key),
               SignOptions(deterministic=True, signing_time=GOLDEN_SIGNING_TIME))  # fmt: skip
    assert Path(pgp_copy).read_bytes() == (golden_images / f"{base}-signed-pgp.sif").read_bytes()


# --------------------------------------------------------------------------- key types


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "ecdsa384", "rsa"])
def test_each_pem_key_type_signs_and_verifies(tmp_path: Path, kind: str) -> None:
    private, public = write_pem_pair(tmp_path, kind, kind)
    image = small_image(tmp_path / "a.sif", groups=2)
    done = sign_image(str(image), dsse_signer(private), SignOptions())
    assert [(d.group, d.action) for d in done] == [(1, "added"), (2, "added")]
    report = verify_image(str(image), keys(public), VerifyOptions())
    assert report.ok, report.failure_summary()
    assert sorted(i for s in report.signatures for i in s.objects) == [1, 2, 3]
    assert report.signatures[0].signers[0].key == str(public)


def test_ecdsa_accepts_p1363_signatures_like_the_reference(pem: Pem) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = load_signing_key(pem["ecdsa"][0], no_passphrase)
    message = dsse.pae(dsse.PAYLOAD_TYPE, b"{}")
    r, s = decode_dss_signature(dsse.sign_pae(key, message))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert dsse.verify_pae(key.public_key(), raw, message)
    assert not dsse.verify_pae(key.public_key(), raw[:-1] + bytes([raw[-1] ^ 1]), message)


def test_encrypted_pem_key_needs_its_passphrase(tmp_path: Path) -> None:
    private, public = write_pem_pair(tmp_path, "enc", "ed25519", passphrase=b"s3cret")
    with pytest.raises(KeyMaterialError, match="encrypted"):
        load_signing_key(private, no_passphrase)
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_signing_key(private, lambda _: b"wrong")
    key = load_signing_key(private, lambda _: b"s3cret")
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), DsseSigner((key,)), SignOptions())
    assert verify_image(str(image), keys(public), VerifyOptions()).ok


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_pgp_keys_sign_and_verify(tmp_path: Path, kind: str) -> None:
    secret, public = write_pgp_pair(tmp_path, f"pgp-{kind}", kind, passphrase="pw")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_pgp_signing_key(secret, lambda _: b"nope")
    signer = PgpSigner(load_pgp_signing_key(secret, lambda _: b"pw"))
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), signer, SignOptions())
    report = verify_image(str(image), keys(public), VerifyOptions())
    assert report.ok, report.failure_summary()
    assert report.signatures[0].signers[0].signer == signer.identity
    with SifImage.open(image) as img:
        assert img.object(3).signature_entity.hex().upper() == signer.identity


def test_expired_pgp_key_fails_now_but_passes_at_signing_time(tmp_path: Path) -> None:
    secret, public = write_pgp_pair(tmp_path, "short", expires=timedelta(days=1))
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), PgpSigner(load_pgp_signing_key(secret, no_passphrase)), SignOptions())
    later = datetime.now(UTC) + timedelta(days=2)
    assert verify_image(str(image), keys(public), VerifyOptions()).ok
    report = verify_image(str(image), keys(public), VerifyOptions(at=later))
    assert "key expired" in report.failure_summary()


# --------------------------------------------------------------------------- one envelope per group


def test_second_key_is_merged_into_the_envelope(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions())
    done = sign_image(str(image), dsse_signer(pem["rsa"][0]), SignOptions())
    assert done[0].action == "merged"
    with SifImage.open(image) as img:
        signatures = [d for d in img.objects if d.is_signature]
    assert len(signatures) == 1
    for _, public in (pem["ed25519"], pem["rsa"]):
        assert verify_image(str(image), keys(public), VerifyOptions()).ok
    assert not verify_image(str(image), keys(pem["ecdsa"][1]), VerifyOptions()).ok


def test_resigning_with_the_same_key_is_idempotent(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    for _ in range(3):
        sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions())
    with SifImage.open(image) as img:
        (sig,) = [d for d in img.objects if d.is_signature]
        envelope = dsse.parse_envelope(img.read(sig, limit=1 << 20))
    assert len(envelope.signatures) == 1


def test_separate_object_is_the_reference_behaviour(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions())
    sign_image(str(image), dsse_signer(pem["rsa"][0]), SignOptions(separate_object=True))
    ed_only = keys(pem["ed25519"][1])
    strict = verify_image(str(image), ed_only, VerifyOptions())
    assert not strict.ok  # as stock `verify --key`: the RSA object has no accepted key
    assert verify_image(str(image), ed_only, VerifyOptions(policy=Policy.parse("any"))).ok
    both = keys(pem["ed25519"][1], pem["rsa"][1])
    assert verify_image(str(image), both, VerifyOptions(policy=Policy.parse("threshold:2"))).ok


def test_threshold_counts_distinct_keys(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), dsse_signer(pem["ed25519"][0], pem["ecdsa"][0]), SignOptions())
    two = keys(pem["ed25519"][1], pem["ecdsa"][1])
    assert verify_image(str(image), two, VerifyOptions(policy=Policy.parse("threshold:2"))).ok
    three = keys(pem["ed25519"][1], pem["ecdsa"][1], pem["rsa"][1])
    report = verify_image(str(image), three, VerifyOptions(policy=Policy.parse("threshold:3")))
    assert not report.ok and "2 of the required 3 distinct keys" in report.failure_summary()


def test_stale_envelope_is_never_blessed(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions())
    with SifImage.open(image) as img:
        target = img.object(2)
    raw = bytearray(image.read_bytes())
    raw[target.offset] ^= 0xFF
    image.write_bytes(bytes(raw))
    before = image.read_bytes()
    with pytest.raises(SigningError, match="no longer matches the image"):
        sign_image(str(image), dsse_signer(pem["rsa"][0]), SignOptions())
    assert image.read_bytes() == before


def test_mixing_pgp_and_dsse_in_a_group_is_refused(pem: Pem, tmp_path: Path) -> None:
    secret, _ = write_pgp_pair(tmp_path, "pgp")
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), PgpSigner(load_pgp_signing_key(secret, no_passphrase)), SignOptions())
    before = image.read_bytes()
    with pytest.raises(SigningError, match="stock `singularity verify`"):
        sign_image(str(image), dsse_signer(pem["rsa"][0]), SignOptions())
    assert image.read_bytes() == before


def test_extension_is_written_and_kept_on_rewrite(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    evidence = dsse.Extension("https://sif-lifecycle.dev/evidence/v1", {"logIndex": 7})
    sign_image(str(image), dsse_signer(pem["ed25519"][0], extension=evidence), SignOptions())
    sign_image(str(image), dsse_signer(pem["rsa"][0]), SignOptions())
    with SifImage.open(image) as img:
        (sig,) = [d for d in img.objects if d.is_signature]
        raw = img.read(sig, limit=1 << 20)
    doc = json.loads(raw)
    assert doc["signatures"][0]["extension"] == {"kind": evidence.kind, "ext": {"logIndex": 7}}
    assert "extension" not in doc["signatures"][1]
    assert dsse.parse_envelope(raw).signatures[0].extension == evidence


def test_object_selection_signs_a_subset(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif", groups=2)
    done = sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions(object_ids=[2]))
    assert [(d.group, d.objects) for d in done] == [(1, [2])]
    public = keys(pem["ed25519"][1])
    assert verify_image(str(image), public, VerifyOptions(object_ids=[2])).ok
    whole = verify_image(str(image), public, VerifyOptions(groups=[1]))
    assert "object 1: object not signed" in whole.failure_summary()


def test_adding_an_object_to_a_signed_group_breaks_it(pem: Pem, tmp_path: Path) -> None:
    image = small_image(tmp_path / "a.sif")
    sign_image(str(image), dsse_signer(pem["ed25519"][0]), SignOptions())
    with SifImage.open(image, writable=True) as img:
        img.add(ObjectSpec(DataType.GENERIC, b"smuggled"))
    report = verify_image(str(image), keys(pem["ed25519"][1]), VerifyOptions())
    assert "object not signed" in report.failure_summary()


def test_verification_reads_image_data_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public_keys = KeySet()
    image = small_image(tmp_path / "a.sif")
    for i in range(8):
        private, public = write_pem_pair(tmp_path, f"k{i}", "ed25519")
        sign_image(str(image), dsse_signer(private), SignOptions(separate_object=True))
        public_keys.merge(load_verifier_keys(public))
    reads: Counter[int] = Counter()
    original = SifImage.stream

    def counting(self: SifImage, desc: Descriptor, chunk_size: int = 1 << 22) -> Iterator[memoryview]:
        reads[desc.id] += 1
        return original(self, desc, chunk_size)

    monkeypatch.setattr(SifImage, "stream", counting)
    report = verify_image(str(image), public_keys, VerifyOptions())
    assert report.ok and len(report.signatures) == 8
    assert reads == Counter({1: 1, 2: 1})
