"""Writers refuse layouts they cannot change without overwriting bytes in use (finding 5).

Each hostile layout is built from a valid signed image by moving its descriptor table and
objects; readers (and the reference's ``siftool list``) accept them, so nothing but the writer's
own check stands between ``sign`` and an image whose every object is lost.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.errors import SifError
from lifecycle.integrity.sign import SignOptions, sign_image
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import DataType, ObjectSpec, SifImage
from lifecycle.sif.format import DESCRIPTOR_SIZE, HEADER_SIZE
from tests.conftest import SignedImage, SigningKit
from tests.keygen import write_pem_pair


@dataclass(frozen=True)
class Layout:
    """Where the table and each object go, and where the header says data starts."""

    table: int
    data_offset: int
    objects: tuple[int, ...]
    """New offset per in-use object, in slot order."""


def relayout(source: Path, target: Path, layout: Layout) -> Path:
    """Rewrite ``source`` with the same header, descriptors and object bytes at new places."""
    with SifImage.open(source) as image:
        datas = [image.read(d, limit=1 << 20) for d in image.objects]
        moved = {d.slot: d.with_changes(offset=o)
                 for d, o in zip(image.objects, layout.objects, strict=True)}  # fmt: skip
        slots = [moved.get(d.slot, d) for d in image.slots]
        header = image.header.with_changes(descriptors_offset=layout.table,
                                           data_offset=layout.data_offset)  # fmt: skip
    table = b"".join(d.pack() for d in slots)
    # Objects first: where one shares bytes with the header or table, those win (and stay valid).
    pieces = [(d.offset, data) for d, data in zip(moved.values(), datas, strict=True)]
    pieces += [(0, header.pack()), (layout.table, table)]
    size = max(offset + len(data) for offset, data in pieces)
    buffer = bytearray(size)
    for offset, data in pieces:
        buffer[offset : offset + len(data)] = data
    target.write_bytes(bytes(buffer))
    return target


def _sizes(path: Path) -> tuple[int, list[int]]:
    with SifImage.open(path) as image:
        return image.header.descriptors_total * DESCRIPTOR_SIZE, [d.size for d in image.objects]


def hostile_layouts(path: Path) -> dict[str, Layout]:
    table, sizes = _sizes(path)

    def packed(start: int) -> tuple[int, ...]:
        offsets, at = [], start
        for size in sizes:
            offsets.append(at)
            at += size
        return tuple(offsets)

    data_end = 4096 + sum(sizes)
    return {
        # The finding: valid to read, but the next object would be written over the table.
        "table after the data": Layout(data_end, 4096, packed(4096)),
        "table overlapping the data end": Layout(data_end - 2, 4096, packed(4096)),
        "object inside the table": Layout(4096, 4096 + table, (4100, *packed(4096 + table)[1:])),
        "data offset inside the table, objects before it": Layout(
            8192, 8192 + table // 2, packed(HEADER_SIZE + 64)),
        "object inside the header": Layout(4096, 4096 + table, (100, *packed(4096 + table)[1:])),
    }  # fmt: skip


@pytest.fixture
def signed(small_signed_images: dict[str, SignedImage], tmp_path: Path) -> SignedImage:
    original = small_signed_images["dsse"]
    copy = Path(shutil.copy(original.path, tmp_path / "signed.sif"))
    return SignedImage(original.kind, copy, original.data, original.keys)


def test_hostile_layouts_read_but_every_writer_refuses(
    signed: SignedImage, signing_kit: SigningKit, tmp_path: Path
) -> None:
    count = len(_sizes(signed.path)[1])
    for label, layout in hostile_layouts(signed.path).items():
        path = relayout(signed.path, tmp_path / "hostile.sif", layout)
        before = path.read_bytes()
        with SifImage.open(path) as image:  # readers accept it
            assert len(image.objects) == count, label
        for kind in ("dsse", "pgp"):
            with pytest.raises(SifError, match="descriptor table") as refused:
                sign_image(str(path), signing_kit.signer(kind), SignOptions(separate_object=True))
            assert "\n" not in str(refused.value) and str(path) in str(refused.value)
        with SifImage.open(path, writable=True) as image, pytest.raises(SifError):
            image.add(ObjectSpec(DataType.GENERIC, b"more", group=1))
        assert path.read_bytes() == before, label


def test_table_after_the_data_still_verifies_and_sign_cli_refuses(
    signed: SignedImage, tmp_path: Path
) -> None:
    layout = hostile_layouts(signed.path)["table after the data"]
    path = relayout(signed.path, tmp_path / "table-last.sif", layout)
    listed = subprocess.run(["siftool", "list", str(path)], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert listed.returncode == 0 and "Signature" in listed.stdout, listed.stderr
    assert verify_image(str(path), signed.keys, VerifyOptions()).ok
    before = path.read_bytes()
    private, _ = write_pem_pair(tmp_path, "k", "ed25519")
    result = CliRunner().invoke(cli, ["sign", "--key", str(private), str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "descriptor table" in result.output
    assert path.read_bytes() == before
    assert verify_image(str(path), signed.keys, VerifyOptions()).ok


def test_table_between_objects_signs_without_touching_them(
    signed: SignedImage, signing_kit: SigningKit, tmp_path: Path
) -> None:
    """Objects after the table: appending past them is safe, and every old byte survives."""
    table, sizes = _sizes(signed.path)
    first = HEADER_SIZE + 64
    rest = 8192 + table
    offsets = [first]
    for size in sizes[1:]:
        offsets.append(rest)
        rest += size
    path = relayout(signed.path, tmp_path / "middle.sif", Layout(8192, first, tuple(offsets)))
    before = path.read_bytes()
    sign_image(str(path), signing_kit.signer("pgp"), SignOptions(groups=[1], separate_object=True))
    after = path.read_bytes()
    with SifImage.open(path) as image:
        new = max(image.objects, key=lambda d: d.offset)
        assert new.offset == len(before)
        for desc in image.objects[: len(sizes)]:
            assert after[desc.offset : desc.end] == before[desc.offset : desc.end]
    # A compaction that would cut the file inside the table is refused; the rest is not.
    with SifImage.open(path, writable=True) as image:
        later = [d.id for d in image.objects if d.offset > 8192]
        snapshot = path.read_bytes()
        with pytest.raises(SifError, match="descriptor table"):
            image.delete(later, compact=True)
        assert path.read_bytes() == snapshot
        image.delete([later[-1]], compact=True)
    with SifImage.open(path) as image:
        assert len(image.objects) == len(sizes)


def test_every_golden_image_still_signs(
    golden_images: Path, signing_kit: SigningKit, tmp_path: Path
) -> None:
    for source in sorted(golden_images.glob("*.sif")):
        with SifImage.open(source) as image:
            if not image.groups():
                continue
        path = Path(shutil.copy(source, tmp_path / source.name))
        sign_image(str(path), signing_kit.signer("dsse"), SignOptions(separate_object=True))
        with SifImage.open(path) as image:
            assert image.objects[-1].is_signature, source.name
