"""Key files, encryption at rest, fingerprints/keyids, the key state machine, PGP with gpg."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.errors import KeyMaterialError, KeyStateError
from lifecycle.integrity import dsse
from lifecycle.model.key_state import KeyState, current_state, transition
from lifecycle.pki import keys, pgp
from lifecycle.pki.keystore import KeyDirectory
from tests.pki.conftest import PASSPHRASE, run, tool

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("algorithm", list(keys.KeyAlgorithm))
def test_saved_keys_are_encrypted_0600_and_reload(tmp_path: Path,
                                                  algorithm: keys.KeyAlgorithm) -> None:
    key = keys.generate_private_key(algorithm)
    stored = KeyDirectory(tmp_path / "keys").save_pem(key, PASSPHRASE)
    path = tmp_path / "keys" / stored.file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert stored.dsse_keyid == dsse.keyid(key.public_key())
    assert stored.fingerprint == keys.fingerprint(key.public_key())
    assert stored.algorithm == algorithm.value
    again = KeyDirectory(tmp_path / "keys").load_pem(stored.file, PASSPHRASE)
    assert keys.public_pem(again.public_key()) == keys.public_pem(key.public_key())


def test_wrong_passphrase_and_corrupt_pem_name_the_file(tmp_path: Path) -> None:
    stored = KeyDirectory(tmp_path).save_pem(
        keys.generate_private_key(keys.KeyAlgorithm.P256), PASSPHRASE)
    with pytest.raises(KeyMaterialError, match=rf"{stored.file}: .*wrong passphrase"):
        KeyDirectory(tmp_path).load_pem(stored.file, b"nope")
    with pytest.raises(KeyMaterialError, match=r"bad\.pem: .*not a valid PEM private key"):
        keys.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n", None, path="bad.pem")


def test_unsupported_rsa_size_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(KeyMaterialError, match="3072 or 4096"):
        keys.algorithm_of(rsa.generate_private_key(65537, 2048))


def test_state_machine_normal_life_and_records() -> None:
    history = transition((), KeyState.PENDING, at=T0, reason="generated")
    for i, state in enumerate((KeyState.ACTIVE, KeyState.RETIRING, KeyState.RETIRED), 1):
        history = transition(history, state, at=T0 + timedelta(days=i), reason=f"step {i}")
    assert current_state(history) is KeyState.RETIRED
    assert [t.from_state for t in history] == [None, KeyState.PENDING, KeyState.ACTIVE,
                                               KeyState.RETIRING]
    assert history[2].at == T0 + timedelta(days=2) and history[2].reason == "step 2"


@pytest.mark.parametrize("start", [KeyState.PENDING, KeyState.ACTIVE, KeyState.RETIRING])
@pytest.mark.parametrize("end", [KeyState.REVOKED, KeyState.COMPROMISED])
def test_revoked_or_compromised_from_any_live_state(start: KeyState, end: KeyState) -> None:
    history = transition((), KeyState.PENDING, at=T0, reason="new")
    path = [KeyState.ACTIVE, KeyState.RETIRING]
    for state in path[: path.index(start) + 1] if start in path else []:
        history = transition(history, state, at=T0, reason="move")
    assert current_state(transition(history, end, at=T0, reason="incident")) is end


@pytest.mark.parametrize(("path", "target"), [
    ([], KeyState.RETIRING),
    ([KeyState.ACTIVE], KeyState.PENDING),
    ([KeyState.ACTIVE, KeyState.RETIRING, KeyState.RETIRED], KeyState.ACTIVE),
    ([KeyState.COMPROMISED], KeyState.REVOKED),
])
def test_invalid_transitions_raise(path: list[KeyState], target: KeyState) -> None:
    history = transition((), KeyState.PENDING, at=T0, reason="new")
    for state in path:
        history = transition(history, state, at=T0, reason="move")
    with pytest.raises(KeyStateError, match=f"cannot move from .* to {target}"):
        transition(history, target, at=T0, reason="bad")


def test_transition_needs_reason_and_ordered_aware_time() -> None:
    history = transition((), KeyState.PENDING, at=T0, reason="new")
    with pytest.raises(KeyStateError, match="reason"):
        transition(history, KeyState.ACTIVE, at=T0, reason=" ")
    with pytest.raises(KeyStateError, match="before the previous"):
        transition(history, KeyState.ACTIVE, at=T0 - timedelta(seconds=1), reason="x")
    with pytest.raises(ValueError, match="aware"):
        transition(history, KeyState.ACTIVE, at=T0.replace(tzinfo=None), reason="x")


@pytest.mark.interop
@pytest.mark.parametrize("algorithm", [pgp.PgpAlgorithm.ED25519, pgp.PgpAlgorithm.RSA3072])
def test_gpg_imports_public_key_and_verifies_signature(tmp_path: Path,
                                                       algorithm: pgp.PgpAlgorithm) -> None:
    gpg = tool("gpg")
    expires = datetime.now(UTC) + timedelta(days=365)
    key = pgp.generate_pgp_key(algorithm, "Build Bot (ci) <bot@example.org>", "pw",
                               expires=expires)
    stored = KeyDirectory(tmp_path / "keys").save_pgp(key)
    assert "PRIVATE KEY" in (tmp_path / "keys" / stored.file).read_text()
    assert KeyDirectory(tmp_path / "keys").load_pgp(stored.file).is_protected
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    pub = tmp_path / "pub.asc"
    pub.write_bytes(stored.public)
    imported = run(gpg, "--batch", "--import", str(pub), env=env)
    assert imported.returncode == 0, imported.stderr
    data = tmp_path / "data.bin"
    data.write_bytes(b"image metadata")
    sig = tmp_path / "data.sig"
    sig.write_text(pgp.sign_detached(key, "pw", data.read_bytes()))
    verified = run(gpg, "--batch", "--status-fd", "1", "--verify", str(sig), str(data), env=env)
    assert verified.returncode == 0, verified.stderr
    assert f"VALIDSIG {stored.fingerprint}" in verified.stdout
    listed = run(gpg, "--batch", "--with-colons", "--list-keys", env=env).stdout
    assert "bot@example.org" in listed
    assert str(int(expires.timestamp()))[:6] in listed  # expiry carried over (to the minute)
    data.write_bytes(b"tampered")
    assert run(gpg, "--batch", "--verify", str(sig), str(data), env=env).returncode != 0
