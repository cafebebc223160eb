"""Property tests over hostile input: mutated and truncated images, and the signature parsers.

Whatever the bytes, reading an image raises only ``SifFormatError``-family errors, verifying
returns a report or raises a ``LifecycleError``, and each parser of signature objects raises only
``SignatureFormatError``; each example finishes within the profile's deadline. Example counts
come from the ``fuzz`` settings profile (``SIF_FUZZ_PROFILE=fuzz-thorough`` runs many more).
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lifecycle.errors import SifFormatError, SignatureFormatError
from lifecycle.integrity import pgp
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import DataType, ObjectSpec, SifImage
from lifecycle.sif.image import MAX_DESCRIPTORS

FUZZ = settings.get_profile(os.environ.get("SIF_FUZZ_PROFILE", "fuzz"))


# ---------------------------------------------------------------- helpers


def signature_of(path: Path) -> tuple[int, bytes]:
    """(ID, data) of the first signature object of an image."""
    with SifImage.open(path) as image:
        desc = next(d for d in image.objects if d.is_signature)
        return desc.id, image.read(desc, limit=1 << 20)


def rewrite_signature(path: Path, object_id: int, data: bytes) -> None:
    """Swap a signature object's bytes, keeping its descriptor fields (what an attacker can do)."""
    with SifImage.open(path, writable=True) as image:
        old = image.object(object_id)
        spec = ObjectSpec(DataType.SIGNATURE, data, group=0, linked_raw=old.linked_raw,
                          extra=old.extra)  # fmt: skip
        image.replace(old, spec)


def armor(signed: pgp.ClearSigned, packet: bytes) -> bytes:
    """A clear-signed object with ``packet`` as its signature, framed as the reference does."""
    body = base64.b64encode(packet).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return (
        f"{pgp.BEGIN_SIGNED}\nHash: SHA256\n\n{signed.text.decode()}\n"
        f"{pgp.BEGIN_SIGNATURE}\n\n{lines}\n{pgp.END_SIGNATURE}"
    ).encode()


def packet_body(packet: bytes) -> int:
    """Where a new-format OpenPGP packet's body starts (after its 1-, 2- or 5-octet length)."""
    return 2 if packet[1] < 192 else 3 if packet[1] < 224 else 6


@pytest.fixture(scope="module")
def clear_signed(small_signed_images: dict) -> pgp.ClearSigned:
    return pgp.decode(signature_of(small_signed_images["pgp"].path)[1])


# ---------------------------------------------------------------- PGP signature packets

# (what is wrong, offset of the byte from the body start, new value); body = version, sigtype,
# pubalg, hashalg, 2-byte hashed length, then creation time (len, type, 4) and issuer (len, type, 8).
BROKEN_PACKETS = [
    ("unknown hash algorithm", 3, 99, "hash algorithm not accepted"),
    ("no issuer key ID", 13, 0x65, "names no issuer key ID"),
    ("no creation time", 7, 0x03, None),
    ("not a signature packet", -1, 0xC6, None),
]


@pytest.mark.parametrize(("what", "at", "value", "error"), BROKEN_PACKETS, ids=[b[0] for b in BROKEN_PACKETS])
def test_malformed_pgp_packets_are_rejected_not_crashing(
    clear_signed: pgp.ClearSigned, what: str, at: int, value: int, error: str | None
) -> None:
    """Regression: pgpy parses lazily, and these raised AttributeError/IndexError from verify."""
    packet = bytearray(clear_signed.packet)
    packet[packet_body(packet) + at if at >= 0 else 0] = value
    mutated = pgp.ClearSigned(clear_signed.text, bytes(packet))
    if error is None:
        with pytest.raises(SignatureFormatError):
            pgp.verify(mutated, [])
    else:
        result = pgp.verify(mutated, [])
        assert not result.ok
        assert error in result.error


@pytest.mark.parametrize("at", [3, 13, 7])
def test_an_image_with_a_malformed_pgp_packet_fails_verification(
    small_signed_images: dict, clear_signed: pgp.ClearSigned, tmp_path: Path, at: int
) -> None:
    image = small_signed_images["pgp"]
    path = tmp_path / "bad.sif"
    shutil.copy(image.path, path)
    packet = bytearray(clear_signed.packet)
    packet[packet_body(packet) + at] ^= 0x66
    object_id, _ = signature_of(path)
    rewrite_signature(path, object_id, armor(clear_signed, bytes(packet)))
    report = verify_image(str(path), image.keys, VerifyOptions())
    assert not report.ok
    assert any(s.errors for s in report.signatures)


@FUZZ
@given(data=st.data())
@example(data=None)
def test_mutated_pgp_packets_verify_or_raise_signature_format_errors(
    small_signed_images: dict, clear_signed: pgp.ClearSigned, data: st.DataObject | None
) -> None:
    packet = bytearray(clear_signed.packet)
    if data is not None:
        for _ in range(data.draw(st.integers(1, 4))):
            packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
        packet = packet[: data.draw(st.integers(0, len(packet)))]
    keyring = small_signed_images["pgp"].keys.pgp
    try:
        result = pgp.verify(pgp.ClearSigned(clear_signed.text, bytes(packet)), keyring)
    except SignatureFormatError:
        return
    assert result.ok == (packet == clear_signed.packet)


# ---------------------------------------------------------------- bounded memory on hostile images

HEADER = struct.Struct("<32s10s3s3s16sqqqqqqqq")  # spec 1.1


def sparse_image(path: Path, total: int) -> None:
    """A header claiming ``total`` descriptors, and a sparse file just big enough to hold them."""
    table = total * 585
    with path.open("wb") as out:
        out.write(HEADER.pack(b"", b"SIF_MAGIC\0", b"01\0", b"00\0", bytes(16), 0, 0, total, total,
                              HEADER.size, table, HEADER.size + table, 0))  # fmt: skip
        out.truncate(HEADER.size + table)


def peak_allocation(action: Callable[[], object]) -> int:
    """Peak bytes the Python allocator held while ``action`` ran (its exceptions propagate)."""
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_huge_descriptor_table_in_a_sparse_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Regression: 1.8 million claimed slots in a sparse 1 GiB file took ~2.5 GiB and 30 s to load."""
    path = tmp_path / "sparse.sif"
    sparse_image(path, (1 << 30) // 585)
    caught: list[SifFormatError] = []

    def load() -> None:
        with pytest.raises(SifFormatError) as error:
            SifImage.open(path)
        caught.append(error.value)

    assert peak_allocation(load) < 1 << 20
    assert caught[0].field == "header.DescriptorsTotal"


def test_the_largest_accepted_table_loads_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "sparse.sif"
    sparse_image(path, MAX_DESCRIPTORS)

    def load() -> None:
        with SifImage.open(path) as image:
            assert len(image.slots) == MAX_DESCRIPTORS

    assert peak_allocation(load) < 32 << 20
