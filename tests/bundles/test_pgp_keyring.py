"""The bundle's PGP keyring: the current keys with their latest self-signatures (extended
expiry) and the revocations, as gpg reads them; the README's commands for it."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from lifecycle.bundles import layout as lay
from lifecycle.bundles.archive import read_bundle
from lifecycle.bundles.exporter import export
from lifecycle.config import ImageSetPolicy, KeyAlgorithm, KeyType
from lifecycle.integrity import pgp
from lifecycle.integrity.pgp_validity import PgpRevocationReason, expiry_at, revocation_at
from lifecycle.model.fleet import ActionKind, ApplyStatus
from lifecycle.model.key_state import KeyState
from tests.conftest import require_tool
from tests.strategies.conftest import make_fleet

EXT = ImageSetPolicy("ext", ("ext-*.sif",), "reissue", key_type=KeyType.PGP,
                     key_algorithm=KeyAlgorithm.ED25519, certificate_lifetime=timedelta(days=90))
ROT = ImageSetPolicy("rot", ("rot-*.sif",), "resign", key_type=KeyType.PGP,
                     key_algorithm=KeyAlgorithm.ED25519, certificate_lifetime=timedelta(days=90))


def test_keyring_has_extensions_and_revocations(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [EXT, ROT])
    fleet.run()
    fleet.now += timedelta(days=61)
    fleet.run()  # both keys extended
    assert sum(r.status is ApplyStatus.DONE for _, a, r in fleet.history
               if a.kind is ActionKind.EXTEND) == 2
    bad = fleet.active_key("rot")
    fleet.ca.keys.transition(bad, KeyState.COMPROMISED, "leaked", at=fleet.now)
    fleet.run()  # revoked (compromised) and a new key provisioned
    export(fleet.ca, tmp_path / "b", now=fleet.now)
    files = read_bundle(tmp_path / "b")
    keyring = files[lay.PGP_KEYRING].decode()
    keys = {pgp.fingerprint(k): k for k in pgp.load_keys(keyring, "keyring")}
    state = {k.fingerprint: k for k in fleet.state().keys}
    assert set(keys) == set(state)  # current ones, and the revoked one with its revocation
    good = fleet.active_key("ext")
    assert expiry_at(keys[good]) == state[good].expires_at == fleet.now + timedelta(days=90)
    assert revocation_at(keys[bad])[1] is PgpRevocationReason.COMPROMISED  # type: ignore[index]
    assert all(k.is_public for k in keys.values())
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = [require_tool("gpg"), "--homedir", str(home), "--batch", "--no-tty",
           # the keys were made at the simulated time: gpg judges then, not at the real clock
           "--faked-system-time", f"{fleet.now:%Y%m%dT%H%M%S}!"]
    (tmp_path / "k.asc").write_text(keyring)
    subprocess.run([*gpg, "--import", str(tmp_path / "k.asc")], check=True, capture_output=True)
    rows = subprocess.run([*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True,
                          text=True).stdout.splitlines()
    validity = {}
    last = ""
    for row in rows:
        fields = row.split(":")
        if fields[0] == "pub":
            last = fields[1]
        if fields[0] == "fpr" and last:
            validity[fields[9]] = last
            last = ""
    assert validity.get(bad) == "r" and validity.get(good) not in (None, "r"), rows
    readme = files[lay.README].decode()
    assert f"singularity key import {lay.PGP_KEYRING}" in readme
    assert "singularity verify --local IMAGE.sif" in readme
