"""Property tests over hostile input: mutated and truncated images, and the signature parsers.

Whatever the bytes, reading an image raises only ``SifFormatError``-family errors, verifying
returns a report or raises a ``LifecycleError``, and each parser of signature objects raises only
``SignatureFormatError``; each example finishes within the profile's deadline. Example counts
come from the ``fuzz`` settings profile (``SIF_FUZZ_PROFILE=fuzz-thorough`` runs many more).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lifecycle.cli.main import cli
from lifecycle.errors import LifecycleError, SifFormatError, SignatureFormatError
from lifecycle.integrity import dsse, pgp
from lifecycle.integrity.keys import KeySet
from lifecycle.integrity.metadata import ImageMetadata
from lifecycle.integrity.results import VerifyReport
from lifecycle.integrity.sign import SignOptions, sign_image
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import DataType, ObjectSpec, SifImage, create_image
from lifecycle.sif.format import Descriptor, type_name
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
DESCRIPTOR = struct.Struct("<iBIIIqqqqqqq128s384s")  # spec 1.3
GROUP_FLAG = 0xF0000000


def sparse_image(path: Path, total: int) -> None:
    """A header claiming ``total`` descriptors, and a sparse file just big enough to hold them."""
    table = total * 585
    with path.open("wb") as out:
        out.write(HEADER.pack(b"", b"SIF_MAGIC\0", b"01\0", b"00\0", bytes(16), 0, 0, total, total,
                              HEADER.size, table, HEADER.size + table, 0))  # fmt: skip
        out.truncate(HEADER.size + table)


def measured(action: Callable[[], object]) -> tuple[int, object]:
    """(peak bytes the Python allocator held, result or LifecycleError) of running ``action``."""
    tracemalloc.start()
    try:
        outcome = action()
    except LifecycleError as exc:
        outcome = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, outcome


def test_a_huge_descriptor_table_in_a_sparse_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Regression: 1.8 million claimed slots in a sparse 1 GiB file took ~2.5 GiB and 30 s to load."""
    path = tmp_path / "sparse.sif"
    sparse_image(path, (1 << 30) // 585)
    peak, outcome = measured(lambda: SifImage.open(path))
    assert peak < 1 << 20
    assert isinstance(outcome, SifFormatError)
    assert outcome.field == "header.DescriptorsTotal"


def test_the_largest_accepted_table_loads_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "sparse.sif"
    sparse_image(path, MAX_DESCRIPTORS)

    def load() -> int:
        with SifImage.open(path) as image:
            return len(image.slots)

    peak, outcome = measured(load)
    assert peak < 32 << 20
    assert outcome == MAX_DESCRIPTORS


# ---------------------------------------------------------------- mutated, truncated, hostile images

GOLDEN_SOURCES = ["one-group-signed-dsse.sif", "two-groups-signed-pgp.sif", "one-group-signed-legacy.sif",
                  "one-object-oci-blob.sif", "empty.sif"]  # fmt: skip
SOURCES = [*GOLDEN_SOURCES, "small-dsse", "small-pgp"]
DESCRIPTOR_FIELDS = {
    "DataType": (0, "<i"), "Used": (4, "<B"), "ID": (5, "<I"), "GroupID": (9, "<I"),
    "LinkedID": (13, "<I"), "Offset": (17, "<q"), "Size": (25, "<q"), "SizeWithPadding": (33, "<q"),
}  # fmt: skip
HEADER_FIELDS = {
    "DescriptorsFree": 80, "DescriptorsTotal": 88, "DescriptorsOffset": 96, "DescriptorsSize": 104,
    "DataOffset": 112, "DataSize": 120, "CreatedAt": 64,
}  # fmt: skip
INT64 = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-4, 1 << 20),
    st.sampled_from([2**63 - 1, -(2**63), 2**62, 2**63 // 585 + 1, 2**32, 2**31 - 1, 585]),
)


@pytest.fixture(scope="module")
def corpus(golden_images: Path, small_signed_images: dict) -> dict[str, bytes]:
    images = {name: (golden_images / name).read_bytes() for name in GOLDEN_SOURCES}
    images.update({f"small-{kind}": image.data for kind, image in small_signed_images.items()})
    return images


@pytest.fixture(scope="module")
def all_keys(signing_kit: Any) -> KeySet:
    """DSSE (Ed25519) and PGP keys together: every signed image in the corpus verifies with them."""
    keys = KeySet()
    keys.merge(signing_kit.dsse_keys)
    keys.merge(signing_kit.pgp_keys)
    return keys


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file that every example overwrites (function-scoped tmp_path does not mix with @given)."""
    return tmp_path_factory.mktemp("fuzz") / "image.sif"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def read_and_list(path: Path, runner: CliRunner) -> bool:
    """Open, list and stream every object; True when the image loads. Only SifFormatError may escape."""
    try:
        with SifImage.open(path) as image:
            for d in image.objects:
                _ = (d.name_text, type_name(d.data_type), d.group, d.linked_group, d.linked_object)
                _ = (d.partition_info, d.signature_hash_type, d.signature_entity, d.is_primary_partition)
                assert sum(len(chunk) for chunk in image.stream(d)) == d.size
            image.groups()
    except SifFormatError:
        loads = False
    else:
        loads = True
    for command in ("list", "header"):
        result = runner.invoke(cli, ["sif", command, str(path)])
        assert result.exit_code == (0 if loads else 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return loads


def verify_or_lifecycle_error(path: Path, keys: KeySet) -> VerifyReport | None:
    """The default (reference) verification's report, after the legacy mode also ran cleanly."""
    with contextlib.suppress(LifecycleError):
        verify_image(str(path), keys, VerifyOptions(legacy=True, all_objects=True))
    try:
        return verify_image(str(path), keys, VerifyOptions())
    except LifecycleError:
        return None


def check_hostile(path: Path, raw: bytes, runner: CliRunner, keys: KeySet) -> None:
    path.write_bytes(raw)
    loads = read_and_list(path, runner)
    report = verify_or_lifecycle_error(path, keys)
    if not loads:
        assert report is None


@FUZZ
@given(
    source=st.sampled_from(SOURCES),
    mutations=st.lists(
        st.tuples(st.one_of(st.integers(0, 200), st.integers(0, 1 << 20)), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
)
def test_randomly_mutated_images_fail_cleanly(
    corpus: dict[str, bytes], scratch: Path, runner: CliRunner, all_keys: KeySet,
    source: str, mutations: list[tuple[int, int]],
) -> None:  # fmt: skip
    raw = bytearray(corpus[source])
    for offset, value in mutations:
        raw[offset % len(raw)] = value
    check_hostile(scratch, bytes(raw), runner, all_keys)


def required_length(raw: bytes) -> int:
    """The shortest file that holds the header, the whole table and every in-use object."""
    fields = HEADER.unpack_from(raw)
    total, offset, data_offset = fields[8], fields[9], fields[11]
    ends = [HEADER.size, offset + total * 585, data_offset]
    for slot in range(total):
        used, position, size = struct.unpack_from("<B12xqq", raw, offset + slot * 585 + 4)
        if used:
            ends.append(position + size)
    return max(ends)


@FUZZ
@given(source=st.sampled_from(SOURCES), cut=st.floats(0, 1, exclude_max=True))
@example(source="small-dsse", cut=0.0)
def test_truncation_anywhere_is_a_format_error(
    corpus: dict[str, bytes], scratch: Path, runner: CliRunner, all_keys: KeySet, source: str, cut: float
) -> None:
    raw = corpus[source]
    length = int(len(raw) * cut)
    scratch.write_bytes(raw[:length])
    assert read_and_list(scratch, runner) == (length >= required_length(raw))
    if length < required_length(raw):
        with pytest.raises(SifFormatError):
            verify_image(str(scratch), all_keys, VerifyOptions())


@FUZZ
@given(source=st.sampled_from(SOURCES), field=st.sampled_from(sorted(HEADER_FIELDS)), value=INT64)
def test_hostile_header_counts_and_offsets_fail_cleanly(
    corpus: dict[str, bytes], scratch: Path, runner: CliRunner, all_keys: KeySet,
    source: str, field: str, value: int,
) -> None:  # fmt: skip
    raw = bytearray(corpus[source])
    struct.pack_into("<q", raw, HEADER_FIELDS[field], value)
    check_hostile(scratch, bytes(raw), runner, all_keys)


@FUZZ
@given(source=st.sampled_from(SOURCES), field=st.sampled_from(sorted(DESCRIPTOR_FIELDS)), data=st.data())
def test_hostile_descriptor_fields_fail_cleanly(
    corpus: dict[str, bytes], scratch: Path, runner: CliRunner, all_keys: KeySet,
    source: str, field: str, data: st.DataObject,
) -> None:  # fmt: skip
    """Values include other objects' offsets and sizes (overlaps), past-EOF and negative ones."""
    raw = bytearray(corpus[source])
    total, table = HEADER.unpack_from(raw)[8:10]
    slot = data.draw(st.integers(0, total - 1), label="slot")
    at, fmt = DESCRIPTOR_FIELDS[field]
    neighbours = [v for s in range(total) for v in struct.unpack_from("<qq", raw, table + s * 585 + 17)]
    size = struct.calcsize(fmt)
    bits = 8 * size
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt.islower() else (0, 2**bits - 1)
    value = data.draw(
        st.one_of(INT64, st.sampled_from([*neighbours, len(raw)])).filter(lambda v: low <= v <= high),
        label="value",
    )
    struct.pack_into(fmt, raw, table + slot * 585 + at, value)
    check_hostile(scratch, bytes(raw), runner, all_keys)


def claim_size(source: Path, path: Path, pick: Callable[[Descriptor], bool], size: int) -> Descriptor:
    """Copy ``source`` with the first object ``pick`` accepts moved to the end of the file and
    claiming ``size`` bytes there; the file is extended sparsely to hold them."""
    shutil.copy(source, path)
    end = path.stat().st_size
    with SifImage.open(path) as sif:
        desc = next(d for d in sif.objects if pick(d))
        position = sif.header.descriptors_offset + desc.slot * 585 + DESCRIPTOR_FIELDS["Offset"][0]
    with path.open("r+b") as out:
        out.seek(position)
        out.write(struct.pack("<qq", end, size))  # Offset, Size
        out.truncate(end + size)
    return desc


def test_verifying_a_huge_object_streams_in_bounded_memory(small_signed_images: dict, tmp_path: Path) -> None:
    """An object claiming 256 MiB of a sparse file is hashed chunk by chunk, not read whole."""
    image = small_signed_images["dsse"]
    path = tmp_path / "huge.sif"
    first = claim_size(image.path, path, lambda d: not d.is_signature, 256 << 20)
    peak, report = measured(lambda: verify_image(str(path), image.keys, VerifyOptions()))
    assert peak < 16 << 20
    assert isinstance(report, VerifyReport)
    assert f"data object descriptor integrity compromised: {first.id}" in report.failure_summary()


def test_a_signature_object_claiming_a_huge_size_is_refused_without_reading_it(
    small_signed_images: dict, tmp_path: Path
) -> None:
    image = small_signed_images["pgp"]
    path = tmp_path / "huge-signature.sif"
    signature = claim_size(image.path, path, lambda d: d.is_signature, 1 << 30)
    peak, outcome = measured(lambda: verify_image(str(path), image.keys, VerifyOptions()))
    assert peak < 1 << 20
    assert isinstance(outcome, SifFormatError)
    assert outcome.field == f"descriptor[{signature.slot}].Size"


# ---------------------------------------------------------------- signature parsers

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
ENVELOPE_KEYS = ["payloadType", "PAYLOADTYPE", "payload", "signatures", "keyid", "sig", "extension",
                 "kind", "ext", "version", "header", "digest", "objects", "relativeId",
                 "descriptorDigest", "objectDigest"]  # fmt: skip
SHAPED = st.recursive(
    st.sampled_from([dsse.PAYLOAD_TYPE, "e30=", "AA==", "sha256:" + "0" * 64, 0, 2**32, -1, None]) | JSON,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(ENVELOPE_KEYS), inner),
    max_leaves=25,
)
PARSERS: list[Callable[[bytes], object]] = [dsse.parse_envelope, pgp.decode, ImageMetadata.from_json]


def parses_or_signature_format_error(parser: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(SignatureFormatError):
        parser(data)


@FUZZ
@given(parser=st.sampled_from(PARSERS), data=st.binary(max_size=2048))
def test_signature_parsers_take_arbitrary_bytes(parser: Callable[[bytes], object], data: bytes) -> None:
    parses_or_signature_format_error(parser, data)


@pytest.mark.slow
@FUZZ
@given(parser=st.sampled_from(PARSERS), doc=SHAPED)
def test_signature_parsers_take_arbitrary_json_shaped_like_theirs(
    parser: Callable[[bytes], object], doc: object
) -> None:
    parses_or_signature_format_error(parser, json.dumps(doc).encode())


@FUZZ
@given(parser=st.sampled_from(PARSERS), text=st.lists(st.sampled_from([
    pgp.BEGIN_SIGNED, pgp.BEGIN_SIGNATURE, pgp.END_SIGNATURE, "Hash: SHA256", "Hash: MD5, SHA1", "",
    "- dash", "Version: x", "=AbCd", "wsBcBAEBCAAQBQJe+oE0CRCiDCfuf/e6hAAA", '{"version":1}', "\r",
]), max_size=12))  # fmt: skip
def test_signature_parsers_take_clear_sign_lookalikes(
    parser: Callable[[bytes], object], text: list[str]
) -> None:
    parses_or_signature_format_error(parser, "\n".join(text).encode())


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":', f'{{"payloadType":"{dsse.PAYLOAD_TYPE}","signatures":'])
def test_deeply_nested_json_is_a_signature_format_error(
    parser: Callable[[bytes], object], depth: int, opener: str
) -> None:
    with pytest.raises(SignatureFormatError):
        parser((opener * depth).encode())


def overlapping_signatures(path: Path, count: int, size: int) -> None:
    """A data object in group 1 and ``count - 1`` signature descriptors, all over the same bytes."""
    table = count * 585
    data_offset = HEADER.size + table
    rows = [DESCRIPTOR.pack(0x4007, 1, 1, GROUP_FLAG | 1, 0, data_offset, size, size, 0, 0, 0, 0, b"", b"")]
    signature_extra = struct.pack("<i", 1)  # HashType SHA-256
    rows += [
        DESCRIPTOR.pack(
            0x4005,
            1,
            i + 1,
            GROUP_FLAG,
            GROUP_FLAG | 1,
            data_offset,
            size,
            size,
            0,
            0,
            0,
            0,
            b"",
            signature_extra,
        )
        for i in range(1, count)
    ]
    with path.open("wb") as out:
        out.write(HEADER.pack(b"", b"SIF_MAGIC\0", b"01\0", b"00\0", bytes(16), 0, 0, 0, count,
                              HEADER.size, table, data_offset, size))  # fmt: skip
        out.write(b"".join(rows))
        out.write(b"-----BEGIN PGP SIGNED MESSAGE-----\n\n" + b"a\n" * (size // 2 - 18))


def test_objects_sharing_bytes_are_refused_before_any_is_read(tmp_path: Path) -> None:
    """Regression: 200 signature descriptors over one 16 MiB region took 112 s to verify (each
    was read and parsed twice); 16384 of them would have taken hours from a 26 MiB file."""
    path = tmp_path / "overlap.sif"
    overlapping_signatures(path, 200, 1 << 20)
    started = time.monotonic()
    with pytest.raises(SifFormatError) as caught:
        verify_image(str(path), KeySet(), VerifyOptions())
    assert time.monotonic() - started < 1
    assert caught.value.field.endswith(".Offset/Size")
    assert "overlaps object 1" in str(caught.value)


def test_empty_objects_may_share_an_offset(signing_kit: Any, tmp_path: Path) -> None:
    """Zero-size objects occupy no bytes: writers put consecutive empty objects at one offset."""
    path = tmp_path / "empty-objects.sif"
    create_image(path, [ObjectSpec(DataType.GENERIC, b""), ObjectSpec(DataType.GENERIC, b""),
                        ObjectSpec(DataType.GENERIC, b"x")])  # fmt: skip
    sign_image(str(path), signing_kit.dsse, SignOptions())
    with SifImage.open(path) as image:
        assert image.objects[0].offset == image.objects[1].offset
    assert verify_image(str(path), signing_kit.dsse_keys, VerifyOptions()).ok
