"""The resign strategy on a real store: refusal of tampered images, crashes, compromised keys."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import ImageSetPolicy
from lifecycle.integrity.keys import KeySet, VerifierKey
from lifecycle.integrity.sign import remove_signatures
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.inventory.inspect import inspect_image
from lifecycle.model.key_state import KeyState
from lifecycle.sif import SifImage
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.strategies.apply import apply
from tests.strategies.conftest import Fleet, make_fleet
from tests.unit.test_crash_safety import SimulatedCrashError, count_writes, crash_at

WEB = ImageSetPolicy("web", ("web-*.sif",), "resign", key_rotation=timedelta(days=365),
                     overlap=timedelta(days=30))


def verifier(fleet: Fleet, fingerprint: str) -> KeySet:
    from lifecycle.pki import keys

    public = keys.load_public_key(fleet.ca.keys.public_bytes(fingerprint, fleet.ca.passphrase),
                                  path=fingerprint)
    return KeySet(dsse=[VerifierKey(fingerprint[:8], public)])


def verifies(path: Path, keys: KeySet) -> bool:
    return verify_image(str(path), keys, VerifyOptions()).ok


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[Fleet, list[Path], str]:
    """Two signed, tracked images, and the clock at the moment the key rotates."""
    fleet = make_fleet(tmp_path, [WEB])
    fleet.run()
    old = fleet.active_key("web")
    paths = fleet.signed_images("web", 2)
    fleet.now += timedelta(days=365)
    return fleet, paths, old


def test_rotation_signs_into_the_envelope_and_both_keys_verify(
        rotated: tuple[Fleet, list[Path], str]) -> None:
    fleet, paths, old = rotated
    results = fleet.run()
    assert {r.kind for r in results if r.status == "done"} >= {"rotate", "resign"}
    new = fleet.active_key("web")
    for path in paths:
        with SifImage.open(path) as image:
            assert len([d for d in image.objects if d.is_signature]) == 1  # one envelope
        assert verifies(path, verifier(fleet, old)) and verifies(path, verifier(fleet, new))
    again = [r for r in fleet.run() if r.kind == "resign"]
    assert again == []  # nothing left to do: applying again changes nothing
    resign = next(a for _, a, _ in fleet.history if a.kind == "resign")
    before = paths[0].read_bytes()
    assert apply(resign, fleet.context(), fleet.now).status == "skipped"
    assert paths[0].read_bytes() == before


def test_resign_refuses_a_tampered_image_and_reports_it(
        rotated: tuple[Fleet, list[Path], str]) -> None:
    fleet, paths, _ = rotated
    with paths[0].open("r+b") as handle:  # flip a byte of the partition after it was tracked
        with SifImage.open(paths[0]) as image:
            offset = next(d.offset for d in image.objects if not d.is_signature)
        handle.seek(offset + 4)
        handle.write(b"X")
    before = paths[0].read_bytes()
    results = fleet.run()
    refused = [r for r in results if r.status == "refused"]
    assert [r.subject for r in refused] == [str(paths[0])]
    assert "do not verify" in refused[0].detail
    assert paths[0].read_bytes() == before  # not blessed
    assert fleet.status(paths[0]) == "tampered"
    assert verifies(paths[1], verifier(fleet, fleet.active_key("web")))
    with session_scope(fleet.engine) as session:
        rows = audit.entries(session, action="action.resign")
    assert any('"result": "refused"' in r.detail for r in rows)
    assert not [a for a in fleet.plan() if a.subject == str(paths[0])]  # never retried


@pytest.mark.parametrize("torn", [False, True], ids=["clean-stop", "torn-write"])
def test_crash_mid_resign_leaves_every_image_verifiable(
        rotated: tuple[Fleet, list[Path], str], monkeypatch: pytest.MonkeyPatch,
        torn: bool) -> None:
    fleet, paths, old = rotated
    fleet.now -= timedelta(seconds=1)
    fleet.run()  # everything up to the rotation
    fleet.now += timedelta(seconds=1)
    rotate = next(a for a in fleet.plan() if a.kind == "rotate")
    apply(rotate, fleet.context(), fleet.now)
    new = fleet.active_key("web")
    resign = next(a for a in fleet.plan() if a.kind == "resign" and a.subject == str(paths[0]))
    pristine = paths[0].read_bytes()
    total = count_writes(monkeypatch, lambda: apply(resign, fleet.context(), fleet.now))
    assert total >= 4
    for n in range(1, total + 1):
        paths[0].write_bytes(pristine)
        with monkeypatch.context() as m:
            crash_at(m, n, torn)
            with pytest.raises(SimulatedCrashError):
                apply(resign, fleet.context(), fleet.now)
        assert verifies(paths[0], verifier(fleet, old)), f"crash at write {n}/{total}"
        result = apply(resign, fleet.context(), fleet.now)  # the retry finishes the work
        assert result.ok, (n, result)  # done, or skipped when the crash came after the effect
        assert verifies(paths[0], verifier(fleet, new)) and verifies(paths[0], verifier(fleet, old))


@pytest.mark.parametrize("torn", [False, True], ids=["clean-stop", "torn-write"])
def test_remove_signatures_is_crash_safe(
        rotated: tuple[Fleet, list[Path], str], monkeypatch: pytest.MonkeyPatch,
        torn: bool, tmp_path: Path) -> None:
    fleet, paths, old = rotated
    fleet.run()
    new = fleet.active_key("web")
    old_id = next(k.dsse_keyid for k in fleet.state().keys if k.fingerprint == old)
    base = paths[1]
    probe = Path(shutil.copy(base, tmp_path / "probe.sif"))
    total = count_writes(monkeypatch, lambda: remove_signatures(str(probe), {old_id}))
    assert total >= 4
    outcomes = set()
    for n in range(1, total + 1):
        copy = Path(shutil.copy(base, tmp_path / f"crash-{n}.sif"))
        with monkeypatch.context() as m:
            crash_at(m, n, torn)
            with pytest.raises(SimulatedCrashError):
                remove_signatures(str(copy), {old_id})
        assert verifies(copy, verifier(fleet, new)), f"crash at write {n}/{total}"
        outcomes.add(verifies(copy, verifier(fleet, old)))
    assert outcomes == {True, False}  # crash points before and after the old signature left
    probe = Path(shutil.copy(base, tmp_path / "final.sif"))
    [done] = remove_signatures(str(probe), {old_id})
    assert done.removed == [old_id]
    assert not verifies(probe, verifier(fleet, old)) and verifies(probe, verifier(fleet, new))
    assert remove_signatures(str(probe), {old_id}) == []  # idempotent
    new_id = next(k.dsse_keyid for k in fleet.state().keys if k.fingerprint == new)
    from lifecycle.errors import SigningError

    with pytest.raises(SigningError, match="unsigned"):
        remove_signatures(str(probe), {new_id})  # never the last signature


def test_overlap_then_drop_then_retire(rotated: tuple[Fleet, list[Path], str]) -> None:
    fleet, paths, old = rotated
    fleet.run()
    fleet.now += timedelta(days=29)
    assert not [r for r in fleet.run() if r.kind in ("drop", "retire")]
    fleet.now += timedelta(days=1)
    kinds = [r.kind for r in fleet.run() if r.status == "done"]
    assert kinds.count("drop") == 2 and kinds.count("retire") == 1
    for path in paths:
        assert not verifies(path, verifier(fleet, old))
        assert verifies(path, verifier(fleet, fleet.active_key("web")))
    states = [t.to_state.value for t in fleet.ca.keys.history(fleet.ca.keys.get(old).id or 0)]
    assert states == ["pending", "active", "retiring", "retired"]


def test_compromised_key_is_revoked_and_only_intact_images_re_signed(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [WEB])
    fleet.run()
    bad = fleet.active_key("web")
    intact, altered = fleet.image("web-a"), fleet.image("web-b")
    for path in (intact, altered):
        fleet.sign(path, bad)
    fleet.track(intact, altered)
    # The attacker holding the key swaps altered's content and signs it again with that key.
    from lifecycle.sif import SifImage as Image

    with Image.open(altered, writable=True) as image:
        sig = next(d for d in image.objects if d.is_signature)
        image.delete([sig.id])
    with altered.open("r+b") as handle, Image.open(altered) as image:
        offset = next(d.offset for d in image.objects if not d.is_signature)
        handle.seek(offset + 4)
        handle.write(b"EVIL")
    fleet.sign(altered, bad)
    assert inspect_image(altered).intact  # a valid signature by the stolen key
    fleet.now += timedelta(days=10)
    fleet.ca.keys.transition(bad, KeyState.COMPROMISED, "key file leaked", at=fleet.now)
    results = {(r.kind, r.subject): r for r in fleet.run()}
    assert {k for k, _ in results} >= {"revoke", "provision", "purge"}
    assert all(fleet.ca.revocation(c) is not None for c in fleet.ca.certificates()
               if c.key_id == fleet.ca.keys.get(bad).id)
    new = fleet.active_key("web")
    assert results[("purge", str(intact))].status == "done"
    assert verifies(intact, verifier(fleet, new)) and not verifies(intact, verifier(fleet, bad))
    assert results[("purge", str(altered))].status == "refused"
    assert "first seen" in results[("purge", str(altered))].detail
    assert fleet.status(altered) == "tampered" and not verifies(altered, verifier(fleet, new))


def test_air_gapped_lead_publishes_the_next_key_ahead(tmp_path: Path) -> None:
    lead = ImageSetPolicy("web", ("web-*.sif",), "resign", distribution_lead=timedelta(days=14),
                          crl_lifetime=timedelta(days=30), overlap=timedelta(days=30))
    fleet = make_fleet(tmp_path, [lead])
    fleet.run()
    old = fleet.active_key("web")
    published = tmp_path / "publish" / "web" / "keys"
    fleet.now += timedelta(days=365 - 14)
    assert [r.kind for r in fleet.run() if r.kind == "prepare"] == ["prepare"]
    [successor] = [p.stem for p in published.glob("*.pub") if p.stem != old]
    assert (tmp_path / "publish" / "web" / "certificates" / f"{successor}.pem").is_file()
    assert fleet.active_key("web") == old  # published, not yet used
    fleet.now += timedelta(days=14)
    fleet.run()
    assert fleet.active_key("web") == successor  # the key published 14 days earlier


def test_adopting_an_existing_active_key(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [])
    from lifecycle.pki.keys import KeyAlgorithm

    row = fleet.ca.keys.generate(KeyAlgorithm.ED25519, fleet.ca.passphrase)
    fleet.ca.keys.transition(row.fingerprint, KeyState.ACTIVE, "in use before sif-lifecycle")
    adopt = ImageSetPolicy("web", ("web-*.sif",), "reissue", signing_key=row.fingerprint[:12])
    from dataclasses import replace

    from lifecycle.config import Policies

    fleet.policies = Policies((replace(adopt, publish_directory=tmp_path / "publish"),))
    results = fleet.run()
    assert [(r.kind, r.status) for r in results if r.kind == "provision"] == [("provision", "done")]
    assert fleet.active_key("web") == row.fingerprint
