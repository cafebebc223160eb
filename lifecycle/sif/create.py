"""Creating SIF images: empty, or from partitions, definition files and JSON (spec 1.9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lifecycle.errors import SifError
from lifecycle.files import DOCUMENT_LIMIT, read_file
from lifecycle.sif.format import (
    ARCH_CODES,
    DEFAULT_DESCRIPTOR_CAPACITY,
    DEFAULT_DESCRIPTORS_OFFSET,
    DESCRIPTOR_SIZE,
    HEADER_SIZE,
    LAUNCH_SCRIPT_SIZE,
    MAGIC,
    NIL_UUID,
    VERSION,
    ZERO_TIME,
    DataType,
    FsType,
    Header,
    PartType,
    pad,
    partition_extra,
)
from lifecycle.sif.image import MAX_DESCRIPTORS, ObjectSpec, SifImage, now_seconds


def create_image(
    path: str | Path,
    objects: list[ObjectSpec] = (),  # type: ignore[assignment]
    *,
    launch_script: bytes = b"",
    image_id: bytes | None = None,
    deterministic: bool = False,
    when: int | None = None,
    capacity: int = DEFAULT_DESCRIPTOR_CAPACITY,
    descriptors_offset: int = DEFAULT_DESCRIPTORS_OFFSET,
    overwrite: bool = False,
) -> Path:
    """Write a new image with ``objects`` (IDs 1, 2, ... in order), as the reference lays it out.

    ``deterministic`` gives the nil UUID and zero times, so the same inputs give the same bytes.
    The file is written under a temporary name and renamed, so a failure leaves nothing behind.
    """
    path = Path(path)
    if len(launch_script) >= LAUNCH_SCRIPT_SIZE:
        raise SifError(f"launch script must be shorter than {LAUNCH_SCRIPT_SIZE} bytes", path=path)
    if path.exists() and not overwrite:
        raise SifError("file already exists", path=path, hint="choose another path")
    if capacity < len(objects) or capacity < 1:
        raise SifError(f"capacity {capacity} is too small for {len(objects)} objects", path=path)
    if capacity > MAX_DESCRIPTORS:
        raise SifError(f"capacity {capacity} is more than the {MAX_DESCRIPTORS} allowed", path=path)
    stamp = ZERO_TIME if deterministic else (when if when is not None else now_seconds())
    if image_id is None:
        import uuid  # uuid loads platform: not for every reader of lifecycle.sif

        image_id = NIL_UUID if deterministic else uuid.uuid4().bytes
    table_size = capacity * DESCRIPTOR_SIZE
    header = Header(
        launch_script=pad(launch_script, LAUNCH_SCRIPT_SIZE), magic=MAGIC, version=VERSION,
        arch=ARCH_CODES["unknown"], id=image_id, created_at=stamp, modified_at=stamp,
        descriptors_free=capacity, descriptors_total=capacity,
        descriptors_offset=descriptors_offset, descriptors_size=table_size,
        data_offset=descriptors_offset + table_size, data_size=0,
    )  # fmt: skip
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as out:
            out.write(header.pack())
            out.write(bytes(descriptors_offset - HEADER_SIZE))
            out.write(bytes(table_size))
        with SifImage.open(temporary, writable=True) as image:
            for spec in objects:
                image.add(spec, when=stamp)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def partition_spec(
    source: Path | bytes,
    *,
    fs_type: FsType = FsType.SQUASHFS,
    part_type: PartType = PartType.PRIMARY_SYSTEM,
    arch: str = "amd64",
    group: int = 1,
    name: str = "",
) -> ObjectSpec:
    if arch not in ARCH_CODES:
        raise SifError(f"unknown architecture {arch!r}; use one of {', '.join(ARCH_CODES)}")
    return ObjectSpec(
        DataType.PARTITION,
        source,
        group=group,
        name=name.encode(),
        extra=partition_extra(fs_type, part_type, ARCH_CODES[arch]),
    )


def deffile_spec(source: Path | bytes, *, group: int = 1) -> ObjectSpec:
    return ObjectSpec(DataType.DEFFILE, source, group=group)


def json_spec(value: object | Path, *, group: int = 1, name: str = "data.json") -> ObjectSpec:
    """A GenericJSON object from a file (checked to be JSON) or a Python value."""
    if isinstance(value, Path):
        try:
            json.loads(read_file(value, limit=DOCUMENT_LIMIT, what="JSON file", error=SifError))
        except ValueError as exc:
            raise SifError(f"not a readable JSON file: {exc}", path=value) from exc
        data: bytes | Path = value
    else:
        data = json.dumps(value, separators=(",", ":")).encode()
    return ObjectSpec(DataType.GENERIC_JSON, data, group=group, name=name.encode())
