"""A crash after any single write leaves an image that loads and verifies with its old keys.

Every write the signer makes goes through ``FileSink.pwrite``. The test counts them in a clean
run, then for each N re-runs the operation on a fresh copy and "crashes" at write N: either
before it lands or after half of it landed (a torn write). The image must still load, and still
verify with every key that verified it before the operation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lifecycle.integrity.keys import KeySet, load_signing_key, load_verifier_keys, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.integrity.verify import Policy, VerifyOptions, verify_image
from lifecycle.sif import SifImage, create_image, json_spec, partition_spec
from lifecycle.sif.image import FileSink
from tests.keygen import write_pem_pair


class SimulatedCrashError(Exception):
    pass


def count_writes(monkeypatch: pytest.MonkeyPatch, action: object) -> int:
    calls = 0
    original = FileSink.pwrite

    def counting(self: FileSink, data: bytes | memoryview, offset: int) -> None:
        nonlocal calls
        calls += 1
        original(self, data, offset)

    with monkeypatch.context() as m:
        m.setattr(FileSink, "pwrite", counting)
        action()  # type: ignore[operator]
    return calls


def crash_at(monkeypatch: pytest.MonkeyPatch, n: int, torn: bool) -> None:
    calls = 0
    original = FileSink.pwrite

    def crashing(self: FileSink, data: bytes | memoryview, offset: int) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            if torn and len(data) > 1:
                original(self, bytes(data)[: len(data) // 2], offset)
            raise SimulatedCrashError(f"crash at write {n}")
        original(self, data, offset)

    monkeypatch.setattr(FileSink, "pwrite", crashing)


@pytest.fixture
def signed_image(tmp_path: Path) -> tuple[Path, KeySet, DsseSigner, KeySet]:
    """An image signed by key A, plus key B ready to be added."""
    image = create_image(
        tmp_path / "base.sif", [partition_spec(b"hsqs" + bytes(64)), json_spec({"v": 1})]
    )
    keys = {}
    for name in ("a", "b"):
        private, public = write_pem_pair(tmp_path, name, "ed25519")
        keys[name] = (DsseSigner((load_signing_key(private, no_passphrase),)), load_verifier_keys(public))
    sign_image(str(image), keys["a"][0], SignOptions())
    return image, keys["a"][1], keys["b"][0], keys["b"][1]


@pytest.mark.parametrize("torn", [False, True], ids=["clean-stop", "torn-write"])
@pytest.mark.parametrize("separate", [False, True], ids=["merge", "separate-object"])
def test_crash_during_signing_keeps_old_signatures_valid(
    signed_image: tuple[Path, KeySet, DsseSigner, KeySet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    torn: bool,
    separate: bool,
) -> None:
    base, key_a, signer_b, key_b = signed_image
    options = SignOptions(separate_object=separate)
    probe = shutil.copy(base, tmp_path / "probe.sif")
    total = count_writes(monkeypatch, lambda: sign_image(str(probe), signer_b, options))
    assert total >= 4  # data, descriptor body, Used flag, header (and the old object's removal)
    both = KeySet()
    both.merge(key_a)
    both.merge(key_b)
    outcomes = set()
    for n in range(1, total + 1):
        copy = Path(shutil.copy(base, tmp_path / f"crash-{n}.sif"))
        with monkeypatch.context() as m:
            crash_at(m, n, torn)
            with pytest.raises(SimulatedCrashError):
                sign_image(str(copy), signer_b, options)
        with SifImage.open(copy) as img:
            assert img.objects, f"image unreadable after crash at write {n}"
        old_state = verify_image(str(copy), key_a, VerifyOptions())
        if separate:
            # The reference layout (a second object) is all-or-nothing: each crash point is
            # either the old state (A verifies) or the new one (A and B verify together).
            assert old_state.ok or verify_image(str(copy), both, VerifyOptions()).ok, n
        else:
            assert old_state.ok, f"crash at write {n}/{total}: {old_state.failure_summary()}"
        outcomes.add(verify_image(str(copy), key_b, VerifyOptions(policy=Policy("any"))).ok)
    assert outcomes == {True, False}  # crash points both before and after B's signature landed
    final = Path(shutil.copy(base, tmp_path / "final.sif"))
    sign_image(str(final), signer_b, options)
    assert verify_image(str(final), both if separate else key_b, VerifyOptions()).ok


def test_crash_never_touches_existing_object_bytes(
    signed_image: tuple[Path, KeySet, DsseSigner, KeySet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, _, signer_b, _ = signed_image
    with SifImage.open(base) as img:
        data_regions = [(d.offset, d.end) for d in img.objects if not d.is_signature]
    original = base.read_bytes()
    writes: list[tuple[int, int]] = []
    real = FileSink.pwrite

    def recording(self: FileSink, data: bytes | memoryview, offset: int) -> None:
        writes.append((offset, offset + len(data)))
        real(self, data, offset)

    monkeypatch.setattr(FileSink, "pwrite", recording)
    sign_image(str(base), signer_b, SignOptions())
    for start, end in writes:
        for lo, hi in data_regions:
            assert end <= lo or start >= hi, "signing rewrote signed object data"
    assert sum(e - s for s, e in writes) < 64 * 1024
    assert base.read_bytes()[: len(original)] != original  # it did change the metadata
