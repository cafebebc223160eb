"""The SIF container layer against the reference's golden files (spec section 1)."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import struct
import uuid
from pathlib import Path

import pytest

from lifecycle.errors import ObjectNotFoundError, SifCapacityError, SifError, SifFormatError
from lifecycle.sif import (
    DataType,
    FsType,
    ObjectSpec,
    PartType,
    SifImage,
    create_image,
    json_spec,
    partition_spec,
)
from lifecycle.sif import image as image_module
from lifecycle.sif.format import DESCRIPTOR_SIZE, ZERO_TIME

GOLDEN_OBJECT_COUNTS = {
    "empty.sif": 0, "empty-id.sif": 0, "empty-launch-script.sif": 0, "one-object-time.sif": 1,
    "one-object-generic-json.sif": 1, "one-object-crypt-message.sif": 1, "one-object-sbom.sif": 1,
    "one-object-oci-root-index.sif": 1, "one-object-oci-blob.sif": 1, "one-group.sif": 2,
    "one-group-signed-dsse.sif": 3, "one-group-signed-pgp.sif": 3, "two-groups.sif": 3,
    "two-groups-signed-dsse.sif": 5, "two-groups-signed-pgp.sif": 5,
    "one-group-signed-legacy.sif": 3, "one-group-signed-legacy-group.sif": 3,
    "one-group-signed-legacy-all.sif": 4, "two-groups-signed-legacy.sif": 4,
    "two-groups-signed-legacy-group.sif": 4, "two-groups-signed-legacy-all.sif": 5,
}  # fmt: skip
DETERMINISTIC_HEADER_SHA256 = "635fa0a14a8ef0c0351ed3e985799ed1d4f75ce973dea3cc76c99710795cc3f1"


def golden_objects(golden_images: Path) -> tuple[bytes, bytes, bytes]:
    with SifImage.open(golden_images / "two-groups.sif") as img:
        p1, p2, p3 = (img.read(img.object(i), limit=1 << 20) for i in (1, 2, 3))
    return p1, p2, p3


def test_every_golden_image_loads(golden_images: Path) -> None:
    found = {p.name for p in golden_images.glob("*.sif")}
    assert found == set(GOLDEN_OBJECT_COUNTS)
    for name, count in GOLDEN_OBJECT_COUNTS.items():
        with SifImage.open(golden_images / name) as img:
            assert len(img.objects) == count, name
            assert img.header.descriptors_free == img.header.descriptors_total - count
            for desc in img.objects:
                assert sum(len(c) for c in img.stream(desc, chunk_size=1000)) == desc.size


def test_golden_layout_details(golden_images: Path) -> None:
    with SifImage.open(golden_images / "one-group-signed-dsse.sif") as img:
        assert img.header.deterministic
        assert img.header.data_offset == 32176
        sig = img.object(3)
        assert (sig.offset, sig.size, sig.size_with_padding) == (40960, 1694, 1694)
        assert sig.group == 0 and sig.linked_group == 1 and sig.is_signature
        assert img.object(1).size_with_padding == 596
        assert hashlib.sha256(img.header.integrity_bytes()).hexdigest() == DETERMINISTIC_HEADER_SHA256
        expected = "3634ad01db0dd5482ecf685267b53d6201690438ca27c3d7ea91c971a1f41f92"
        assert hashlib.sha256(img.object(1).integrity_bytes(0)).hexdigest() == expected
    with SifImage.open(golden_images / "one-object-oci-blob.sif") as img:
        assert img.object(1).extra.rstrip(b"\0").startswith(b"sha256:a88b15e9")
    with SifImage.open(golden_images / "empty-id.sif") as img:
        assert str(uuid.UUID(bytes=img.header.id)) == "3fa802cc-358b-45e3-bcc0-69dc7a45f9f8"


def test_create_reproduces_golden_images_byte_for_byte(golden_images: Path, tmp_path: Path) -> None:
    p1, p2, p3 = golden_objects(golden_images)
    one = [partition_spec(p1, fs_type=FsType.RAW, part_type=PartType.SYSTEM, arch="386"),
           partition_spec(p2, fs_type=FsType.SQUASHFS, arch="386")]  # fmt: skip
    two = [*one, partition_spec(p3, fs_type=FsType.EXT3, part_type=PartType.SYSTEM, group=2)]
    cases = {
        "empty.sif": create_image(tmp_path / "e.sif", [], deterministic=True),
        "empty-launch-script.sif": create_image(
            tmp_path / "l.sif", [], deterministic=True, launch_script=b"#!/usr/bin/env run-script\n"
        ),
        "empty-id.sif": create_image(
            tmp_path / "i.sif", [], deterministic=True,
            image_id=uuid.UUID("3fa802cc-358b-45e3-bcc0-69dc7a45f9f8").bytes,
        ),
        "one-group.sif": create_image(tmp_path / "1.sif", one, deterministic=True),
        "two-groups.sif": create_image(tmp_path / "2.sif", two, deterministic=True),
        "one-object-generic-json.sif": create_image(
            tmp_path / "j.sif", [json_spec({}, name="data.json")], deterministic=True
        ),
    }
    for golden, made in cases.items():
        assert made.read_bytes() == (golden_images / golden).read_bytes(), golden


def test_create_from_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    squash = tmp_path / "root.sqfs"
    squash.write_bytes(b"hsqs" + bytes(5000))
    made = create_image(tmp_path / "a.sif", [partition_spec(squash)])
    with SifImage.open(made) as img:
        part = img.object(1)
        assert part.offset % 4096 == 0 and part.size == 5004
        assert img.header.arch == b"02\0"  # primary partition sets the header arch
        assert not img.header.deterministic
    with pytest.raises(SifError, match="already exists"):
        create_image(made, [])
    with pytest.raises(SifError, match="launch script"):
        create_image(tmp_path / "b.sif", [], launch_script=b"x" * 32)
    assert not (tmp_path / "b.sif").exists()


def test_add_follows_reference_arithmetic(tmp_path: Path) -> None:
    path = create_image(tmp_path / "a.sif", [json_spec({"a": 1})], deterministic=True)
    with SifImage.open(path, writable=True) as img:
        end = img.data_end()
        desc = img.add(ObjectSpec(DataType.GENERIC, b"xyz", group=2))
        assert (desc.id, desc.offset, desc.size_with_padding) == (2, end, 3)
        part = img.add(ObjectSpec(DataType.PARTITION, b"p" * 10, group=2))
        assert part.offset % 4096 == 0 and part.size_with_padding == part.offset - (end + 3) + 10
        assert desc.created_at == ZERO_TIME  # deterministic image stays deterministic
    with SifImage.open(path) as img:
        assert img.header.data_offset + img.header.data_size == path.stat().st_size
        assert img.header.descriptors_free == 45
        assert img.groups() == [1, 2]


def test_delete_frees_slot_and_reuses_id(tmp_path: Path) -> None:
    path = create_image(tmp_path / "a.sif", [json_spec({"a": 1}), json_spec({"b": 2})])
    size = path.stat().st_size
    with SifImage.open(path, writable=True) as img:
        data = img.object(1)
        img.delete([1], zero=True)
        with pytest.raises(ObjectNotFoundError):
            img.object(1)
        assert img.add(ObjectSpec(DataType.GENERIC, b"new")).id == 1
    raw = path.read_bytes()
    assert raw[data.offset : data.end] == bytes(data.size)
    assert path.stat().st_size == size + 3
    with SifImage.open(path, writable=True) as img:
        img.delete([1], compact=True)
    assert path.stat().st_size == size
    with SifImage.open(path) as img:
        assert img.header.data_offset + img.header.data_size == size


def test_deleting_primary_partition_resets_arch(tmp_path: Path) -> None:
    path = create_image(tmp_path / "a.sif", [partition_spec(b"hsqs", arch="arm64")])
    with SifImage.open(path, writable=True) as img:
        assert img.header.arch == b"04\0"
        img.delete([1])
        assert img.header.arch == b"00\0"


def test_full_descriptor_table_is_a_clear_error(tmp_path: Path) -> None:
    path = create_image(tmp_path / "a.sif", [json_spec({})], capacity=1)
    with SifImage.open(path, writable=True) as img, pytest.raises(SifCapacityError, match="slots"):
        img.add(ObjectSpec(DataType.GENERIC, b"x"))


def test_writer_waits_for_lock_then_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = create_image(tmp_path / "a.sif", [])
    monkeypatch.setattr(image_module, "LOCK_TIMEOUT_SECONDS", 0.2)
    with path.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(SifError, match="locked"):
            SifImage.open(path, writable=True)
    SifImage.open(path, writable=True).close()


def _corrupt(path: Path, offset: int, fmt: str, value: int) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "field"),
    [
        (32, "<B", 0x41, "header.Magic"),
        (42, "<B", 0x32, "header.Version"),
        (88, "<q", 10**15, "header.DescriptorsSize"),
        (88, "<q", -1, "header.DescriptorsTotal"),
        (80, "<q", 49, "header.DescriptorsFree"),
        (96, "<q", -5, "header.DescriptorsOffset"),
        (104, "<q", 5, "header.DescriptorsSize"),
        (112, "<q", 10**12, "header.DataOffset"),
        (4096 + 17, "<q", 10**12, "descriptor[0].Offset/Size"),
        (4096 + 25, "<q", -1, "descriptor[0].Offset/Size"),
        (4096 + DESCRIPTOR_SIZE + 5, "<I", 1, "descriptor[1]"),
    ],
)
def test_hostile_fields_are_named(
    golden_images: Path, tmp_path: Path, offset: int, fmt: str, value: int, field: str
) -> None:
    path = tmp_path / "bad.sif"
    shutil.copy(golden_images / "one-group.sif", path)
    _corrupt(path, offset, fmt, value)
    with pytest.raises(SifFormatError) as caught:
        SifImage.open(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value)


def test_truncation_anywhere_is_a_format_error(golden_images: Path, tmp_path: Path) -> None:
    raw = (golden_images / "one-group.sif").read_bytes()
    path = tmp_path / "cut.sif"
    for length in (0, 10, 127, 128, 4096, 4096 + 585 * 48 - 1, 32176, 36864, len(raw) - 1):
        path.write_bytes(raw[:length])
        with pytest.raises(SifFormatError):
            SifImage.open(path)


def test_not_a_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SifError, match="cannot open"):
        SifImage.open(tmp_path / "missing.sif")
