"""An ephemerally signed image verifies a year later with no network, and only when intact."""

from __future__ import annotations

import base64
import dataclasses
import gc
import json
import socket
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import LifecycleError, LogForkError
from lifecycle.integrity import dsse
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.pki import keys
from lifecycle.sif import SifImage
from lifecycle.store.ca_service import EPHEMERAL, ROOT
from lifecycle.tlog import Log, MemoryLogStorage, NoteVerifier
from lifecycle.tlog.client import LocalLogClient
from lifecycle.verification.checkpoints import CheckpointStore
from lifecycle.verification.longterm import (
    IdentityPolicy,
    LongTermTrust,
    check_signature,
    verify_longterm,
)
from tests.ephemeral.conftest import IDENTITY, ORIGIN, World


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("verification tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def trust(world: World, **changes: Any) -> LongTermTrust:
    base = LongTermTrust(
        (world.root(),), (NoteVerifier.from_verifier_key(world.verifier_key),),
        IdentityPolicy((IDENTITY,)), crls=(world.ca.publish_crl(ROOT, force=True),))
    return dataclasses.replace(base, **changes)


def signed_year_ago(world: World, name: str = "image.sif") -> Path:
    """Sign now (a year ago on the world's clock), then move the clock to today."""
    image = world.image(name)
    world.clock.now = world.clock.now.replace(microsecond=0)
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)
    world.clock.now += timedelta(days=365)
    return image


def envelope(image: Path) -> tuple[int, dsse.Envelope]:
    with SifImage.open(image) as img:
        (desc,) = [d for d in img.objects if d.is_signature]
        return desc.id, dsse.parse_envelope(img.read(desc, limit=1 << 20))


def test_verifies_a_year_later_with_no_network(world: World, no_network: None) -> None:
    image = signed_year_ago(world)
    report = verify_longterm(str(image), trust(world))
    (result,) = report.results
    assert result.ok, result.error
    assert result.identity == IDENTITY
    assert result.log_index == 0 and result.checkpoint_size == 1
    assert result.logged_at is not None
    assert result.logged_at < world.clock.now - timedelta(days=364)
    # the certificate lived 10 minutes, a year ago
    _, env = envelope(image)
    leaf_pem = env.signatures[0].extension.ext["certificates"][0]  # type: ignore[union-attr]
    assert "BEGIN CERTIFICATE" in leaf_pem
    outcome = verify_image(str(image), report.keys(), VerifyOptions())
    assert outcome.ok, outcome.failure_summary()


def test_image_data_change_fails_even_with_good_evidence(world: World) -> None:
    image = signed_year_ago(world)
    with SifImage.open(image, writable=True) as img:
        part = img.objects[0]
        data = bytearray(img.read(part, limit=1 << 20))
    data[-1] ^= 1
    with open(image, "r+b") as fh:
        fh.seek(part.offset + len(data) - 1)
        fh.write(bytes(data[-1:]))
    report = verify_longterm(str(image), trust(world))
    assert report.ok  # the evidence is about the signature, not the data ...
    assert not verify_image(str(image), report.keys(), VerifyOptions()).ok  # ... which changed


def _tampered(world: World, change: Any) -> str:
    """The long-term error after ``change(ext_dict)`` altered the signature's extension."""
    image = signed_year_ago(world)
    object_id, env = envelope(image)
    sig = env.signatures[0]
    assert sig.extension is not None
    ext = json.loads(json.dumps(dict(sig.extension.ext)))
    change(ext)
    altered = sig._replace(extension=dsse.Extension(sig.extension.kind, ext))
    with SifImage.open(image) as img:
        from lifecycle.verification.longterm import image_id

        ident = image_id(img)
    result = check_signature(object_id, altered, env.pae(), ident, trust(world))
    assert result is not None and not result.ok
    return result.error


def _flip_b64(text: str, at: int = 10) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_altered_entry_fails(world: World) -> None:
    def change(ext: dict[str, Any]) -> None:
        leaf = json.loads(base64.b64decode(ext["evidence"]["leaf"]))
        leaf["image_id"] = "00000000-0000-4000-8000-000000000000"
        ext["evidence"]["leaf"] = base64.b64encode(
            json.dumps(leaf, sort_keys=True, separators=(",", ":")).encode()).decode()
    assert "proof" in _tampered(world, change) or "root" in _tampered(world, change)


def test_altered_proof_fails(world: World, tmp_path: Path) -> None:
    # a proof needs hashes: grow the log first so the entry's proof is not empty
    for i in range(3):
        sign_ephemeral(str(world.image(f"pre-{i}.sif")), IDENTITY, world.ca, world.client)

    def change(ext: dict[str, Any]) -> None:
        hashes = ext["evidence"]["inclusion_proof"]["hashes"]
        assert hashes
        hashes[0] = _flip_b64(hashes[0], 0)
    assert _tampered(world, change)


def test_altered_checkpoint_signature_fails(world: World) -> None:
    def change(ext: dict[str, Any]) -> None:
        body, sig_line = ext["evidence"]["checkpoint"].rsplit("— ", 1)
        name, b64 = sig_line.strip().split(" ")
        ext["evidence"]["checkpoint"] = f"{body}— {name} {_flip_b64(b64, 20)}\n"
    assert "signature" in _tampered(world, change).lower() or "verif" in _tampered(world, change)


def test_altered_certificate_fails(world: World) -> None:
    other = world.ca.issue_ephemeral(
        keys.generate_private_key(keys.KeyAlgorithm.P256).public_key(),  # type: ignore[arg-type]
        dsse_name(IDENTITY), timedelta(minutes=10))
    from lifecycle.pki.certs import certificate_pem

    def change(ext: dict[str, Any]) -> None:
        ext["certificates"][0] = certificate_pem(other.certificate).decode()
    assert "another certificate" in _tampered(world, change)


def dsse_name(identity: str) -> Any:
    from lifecycle.ephemeral import identity_name

    return identity_name(identity)


def test_identity_mismatch_fails(world: World) -> None:
    image = signed_year_ago(world)
    wrong = trust(world, identity=IdentityPolicy(("someone@example.org",)))
    (result,) = verify_longterm(str(image), wrong).results
    assert not result.ok and "does not match" in result.error
    assert not verify_longterm(str(image), trust(world, identity=IdentityPolicy())).ok
    regexp = trust(world, identity=IdentityPolicy((), (r"[a-z]+@example\.org",)))
    assert verify_longterm(str(image), regexp).ok
    issuer = trust(world, identity=IdentityPolicy((IDENTITY,), (), ("Some Other CA",)))
    assert not verify_longterm(str(image), issuer).ok
    cn = trust(world, identity=IdentityPolicy(
        (IDENTITY,), (), ("sif-lifecycle Ephemeral Signing CA",)))
    assert verify_longterm(str(image), cn).ok


def test_untrusted_log_key_or_root_fails(world: World) -> None:
    image = signed_year_ago(world)
    stranger = Log(MemoryLogStorage(), ORIGIN, None)
    assert stranger.size == 0
    from lifecycle.tlog import NoteSigner

    other_key = NoteSigner.generate(ORIGIN).verifier
    assert not verify_longterm(str(image), trust(world, log_keys=(other_key,))).ok
    from lifecycle.pki import ca

    stranger_key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    other_root = ca.build_root(stranger_key, ca.name("Stranger Root"),
                               not_before=world.clock.now - timedelta(days=800),
                               lifetime=timedelta(days=3650))
    (result,) = verify_longterm(str(image), trust(world, roots=(other_root,))).results
    assert not result.ok and "no chain to a trusted root" in result.error


def test_chain_is_judged_at_the_logged_time_not_now(world: World) -> None:
    """The leaf expired a year ago; the signature still verifies because the log dates it."""
    image = signed_year_ago(world)
    (result,) = verify_longterm(str(image), trust(world)).results
    assert result.ok
    _, env = envelope(image)
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(
        env.signatures[0].extension.ext["certificates"][0].encode())  # type: ignore[union-attr]
    assert leaf.not_valid_after_utc < world.clock.now
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(minutes=10)


def test_revoking_the_ephemeral_ca_later_keeps_old_signatures(world: World) -> None:
    from cryptography import x509

    image = signed_year_ago(world)
    serial = f"{world.ca.certificate(EPHEMERAL).serial_number:x}"
    world.ca.revoke(serial, x509.ReasonFlags.cessation_of_operation)
    fresh = trust(world)  # the root's CRL now lists the ephemeral CA as revoked today
    (result,) = verify_longterm(str(image), fresh).results
    assert result.ok, result.error
    # the leaf's key reported compromised since before it signed: the signature is worthless
    assert result.logged_at is not None
    world.ca.revoke(result.serial, x509.ReasonFlags.key_compromise,
                    invalidity_date=result.logged_at - timedelta(minutes=1))
    ephemeral_crl = world.ca.publish_crl(EPHEMERAL, force=True)
    with_crl = trust(world, crls=(*fresh.crls, ephemeral_crl))
    (result,) = verify_longterm(str(image), with_crl).results
    assert not result.ok and "compromised" in result.error


def test_fork_of_the_same_size_is_detected_offline(world: World, tmp_path: Path) -> None:
    image = signed_year_ago(world)
    store = CheckpointStore(tmp_path / "checkpoints")
    first = verify_longterm(str(image), trust(world, checkpoints=store)).results[0]
    assert first.ok and "remembered" in first.consistency
    # the log operator rewrites history: same key, same origin, another entry at index 0
    forked = Log(MemoryLogStorage(), ORIGIN, world.signer, clock=world.clock)
    fork_client = LocalLogClient(forked, world.verifier_key)
    other = world.image("other.sif", b"hsqx")
    sign_ephemeral(str(other), IDENTITY, world.ca, fork_client)
    (result,) = verify_longterm(str(other), trust(world, checkpoints=store)).results
    assert not result.ok and "two roots for size 1" in result.error
    # without the remembered checkpoint the forked evidence alone looks fine
    assert verify_longterm(str(other), trust(world)).ok


def test_fork_of_another_size_is_detected_with_a_consistency_proof(
        world: World, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    image = signed_year_ago(world)
    assert verify_longterm(str(image), trust(world, checkpoints=store)).ok
    forked = Log(MemoryLogStorage(), ORIGIN, world.signer, clock=world.clock)
    fork_client = LocalLogClient(forked, world.verifier_key)
    for i in range(3):
        sign_ephemeral(str(world.image(f"f{i}.sif", b"hsq%d" % i)), IDENTITY, world.ca,
                       fork_client)
    newer = world.image("newer.sif", b"hsqn")
    sign_ephemeral(str(newer), IDENTITY, world.ca, fork_client)
    offline = verify_longterm(str(newer), trust(world, checkpoints=store)).results[0]
    assert offline.ok and "not checked" in offline.consistency
    # the honest log's proof from size 1 to 4 does not lead to the forked root
    for i in range(3):
        world.log.append(forked.get(i + 1).entry.submission)
    honest = trust(world, checkpoints=store, log=world.client)
    (result,) = verify_longterm(str(newer), honest).results
    assert not result.ok and "does not extend" in result.error
    # the fork's own proofs cannot connect to the remembered (honest) root either
    with pytest.raises(LogForkError):
        store.observe(forked.signed_checkpoint(), forked.checkpoint(),
                      (NoteVerifier.from_verifier_key(world.verifier_key),), fork_client)


def test_consistent_growth_advances_the_remembered_checkpoint(
        world: World, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    first = signed_year_ago(world)
    assert verify_longterm(str(first), trust(world, checkpoints=store)).ok
    later = world.image("later.sif", b"hsql")
    sign_ephemeral(str(later), IDENTITY, world.ca, world.client)
    (result,) = verify_longterm(str(later), trust(world, checkpoints=store,
                                                 log=world.client)).results
    assert result.ok and result.consistency == "consistent with the remembered size 1"
    verifiers = (NoteVerifier.from_verifier_key(world.verifier_key),)
    remembered = store.remembered(ORIGIN, verifiers)
    assert remembered is not None and remembered.size == 2


class TrackedKey(ed25519.Ed25519PrivateKey):
    """A real Ed25519 key behind an object the test can hold a weak reference to."""

    def __init__(self) -> None:
        self._key = ed25519.Ed25519PrivateKey.generate()

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def private_bytes(self, *args: Any) -> bytes:
        raise AssertionError("the ephemeral key must never be serialized")

    def private_bytes_raw(self) -> bytes:
        raise AssertionError("the ephemeral key must never be serialized")

    def __copy__(self) -> TrackedKey:
        raise AssertionError("the ephemeral key must not be copied")

    def __deepcopy__(self, memo: dict[int, object]) -> TrackedKey:
        raise AssertionError("the ephemeral key must not be copied")


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_key_is_destroyed_and_never_written(world: World) -> None:
    image = world.image()
    made: list[weakref.ref[TrackedKey]] = []
    raw: list[bytes] = []

    def factory(algorithm: keys.KeyAlgorithm) -> TrackedKey:
        assert algorithm is keys.KeyAlgorithm.ED25519
        key = TrackedKey()
        made.append(weakref.ref(key))
        raw.append(key._key.private_bytes_raw())
        return key

    before = _files(world.directory)
    result = sign_ephemeral(str(image), IDENTITY, world.ca, world.client,
                            algorithm=keys.KeyAlgorithm.ED25519, key_factory=factory)
    gc.collect()
    assert made and made[0]() is None, "the ephemeral key is still referenced"
    after = _files(world.directory)
    new = set(after) - set(before)
    assert not new - {"lifecycle.db-wal", "lifecycle.db-shm"}, new
    for name in after:
        assert raw[0] not in (world.directory / name).read_bytes(), name
    assert not any(world.directory.joinpath("keys").rglob("*ephemeral*"))
    assert result.entries[0].entry.submission.certificate.startswith(b"-----BEGIN CERT")


def test_bad_identity_is_refused_before_anything_happens(world: World) -> None:
    image = world.image()
    before = image.read_bytes()
    with pytest.raises(LifecycleError, match="neither an email address nor a URI"):
        sign_ephemeral(str(image), "not an identity", world.ca, world.client)
    assert image.read_bytes() == before and world.log.size == 0


def test_uri_identity(world: World) -> None:
    image = world.image()
    uri = "https://ci.example.org/pipelines/42"
    sign_ephemeral(str(image), uri, world.ca, world.client)
    assert verify_longterm(str(image), trust(world, identity=IdentityPolicy((uri,)))).ok


def test_certificate_signature_of_another_strategy_with_log_evidence(world: World) -> None:
    """A long-lived, certified key whose signature was logged: judged at the logged time."""
    from lifecycle.ephemeral import logging_attest
    from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
    from lifecycle.store.ca_service import INTERMEDIATE
    from lifecycle.verification.extension import EVIDENCE_KIND
    from lifecycle.verification.longterm import image_id
    from tests.pki.conftest import PASSPHRASE

    row = world.ca.keys.generate(keys.KeyAlgorithm.P256, PASSPHRASE, purpose="signing")
    leaf = world.ca.issue(row.fingerprint, "Release Bot", timedelta(days=30)).certificate
    key = world.ca.keys.private_key(row, PASSPHRASE)
    image = world.image()
    with SifImage.open(image) as img:
        ident = image_id(img)
    verifiers = [NoteVerifier.from_verifier_key(world.verifier_key)]
    logged: list[Any] = []
    attest = logging_attest(world.client, [leaf, world.ca.certificate(INTERMEDIATE)], ident,
                            verifiers, EVIDENCE_KIND, str(image), logged)
    sign_image(str(image), DsseSigner((key,), attest=attest), SignOptions())  # type: ignore[arg-type]
    assert len(logged) == 1
    world.clock.now += timedelta(days=365)  # the certificate expired 11 months ago
    crls = (world.ca.publish_crl(ROOT, force=True), world.ca.publish_crl(INTERMEDIATE, force=True))
    (result,) = verify_longterm(str(image), trust(world, identity=IdentityPolicy(),
                                                  crls=crls)).results
    assert result.ok, result.error
    assert result.kind == EVIDENCE_KIND and result.log_index == 0
    assert verify_image(str(image), verify_longterm(
        str(image), trust(world, identity=IdentityPolicy(), crls=crls)).keys(),
        VerifyOptions()).ok
