"""``sif-lifecycle sif ...``: inspect and edit SIF containers (the parts of ``siftool`` we need)."""

from __future__ import annotations

import os
import platform
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import click

from lifecycle.files import open_regular
from lifecycle.sif import create as sif_create
from lifecycle.sif.format import (
    ARCH_CODES,
    ZERO_TIME,
    DataType,
    Descriptor,
    FsType,
    PartType,
    arch_name,
    type_name,
)
from lifecycle.sif.image import ObjectSpec, SifImage

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "ppc64le": "ppc64le",
             "s390x": "s390x", "riscv64": "riscv64"}.get(platform.machine(), "amd64")  # fmt: skip
IMAGE = click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
DATATYPES = {
    "deffile": DataType.DEFFILE, "envvar": DataType.ENVVAR, "labels": DataType.LABELS,
    "partition": DataType.PARTITION, "json": DataType.GENERIC_JSON, "generic": DataType.GENERIC,
}  # fmt: skip


@click.group()
def sif() -> None:
    """Inspect and edit SIF container files.

    \b
    Example:
      sif-lifecycle sif list image.sif
      sif-lifecycle sif dump 1 image.sif > deffile
    """


def _link(desc: Descriptor) -> str:
    if desc.linked_group is not None:
        return f"{desc.linked_group} (G)"
    return str(desc.linked_object) if desc.linked_object else "NONE"


def _describe(desc: Descriptor) -> str:
    kind = type_name(desc.data_type)
    if desc.data_type == DataType.PARTITION:
        fs, part, arch = desc.partition_info
        fs_name = FsType(fs).name.title() if fs in FsType._value2member_map_ else str(fs)
        part_name = PartType(part).name.title() if part in PartType._value2member_map_ else part
        return f"FS ({fs_name}/{part_name}/{arch_name(arch)})"
    if desc.is_signature:
        entity = desc.signature_entity
        return f"Signature ({entity.hex().upper() if any(entity) else 'no fingerprint'})"
    return kind


def _time(seconds: int) -> str:
    if seconds == ZERO_TIME:
        return "zero time (deterministic)"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (out of range)"


@sif.command("list")
@IMAGE
def list_objects(image: Path) -> None:
    """List the objects of IMAGE.

    \b
    Example:
      sif-lifecycle sif list image.sif
    """
    with SifImage.open(image) as img:
        rule = "-" * 78
        click.echo(rule)
        click.echo(f"{'ID':<5}|{'GROUP':<8}|{'LINK':<8}|{'SIF POSITION (start-end)':<26}|TYPE")
        click.echo(rule)
        for d in img.objects:
            group = str(d.group) if d.group else "NONE"
            position = f"{d.offset}-{d.end}"
            click.echo(f"{d.id:<5}|{group:<8}|{_link(d):<8}|{position:<26}|{_describe(d)}")


@sif.command("header")
@IMAGE
def header(image: Path) -> None:
    """Show the global header of IMAGE.

    \b
    Example:
      sif-lifecycle sif header image.sif
    """
    with SifImage.open(image) as img:
        h = img.header
        rows = [
            ("Launch script", h.launch_script.rstrip(b"\0").decode("utf-8", "replace") or "-"),
            ("Version", h.version.rstrip(b"\0").decode()),
            ("Primary arch", arch_name(h.arch)),
            ("ID", str(uuid.UUID(bytes=h.id))),
            ("Created", _time(h.created_at)),
            ("Modified", _time(h.modified_at)),
            ("Descriptors free", str(h.descriptors_free)),
            ("Descriptors total", str(h.descriptors_total)),
            ("Descriptors offset", str(h.descriptors_offset)),
            ("Descriptors size", str(h.descriptors_size)),
            ("Data offset", str(h.data_offset)),
            ("Data size", str(h.data_size)),
        ]
        for name, value in rows:
            click.echo(f"{name + ':':<20}{value}")


@sif.command("dump")
@click.argument("object_id", type=int)
@IMAGE
def dump(object_id: int, image: Path) -> None:
    """Write the data of object OBJECT_ID of IMAGE to standard output.

    \b
    Example:
      sif-lifecycle sif dump 3 image.sif > signature.json
    """
    with SifImage.open(image) as img:
        out = sys.stdout.buffer
        for chunk in img.stream(img.object(object_id)):
            out.write(chunk)
        out.flush()


def _detect_fs(path: Path) -> FsType:
    with os.fdopen(open_regular(path, "partition file"), "rb") as f:
        head = f.read(1082)
    if head[:4] == b"hsqs":
        return FsType.SQUASHFS
    if head[1080:1082] == b"\x53\xef":
        return FsType.EXT3
    return FsType.RAW


def _partition(path: Path, arch: str, group: int, part_type: PartType) -> ObjectSpec:
    return sif_create.partition_spec(
        path, fs_type=_detect_fs(path), part_type=part_type, arch=arch, group=group
    )


@sif.command("new")
@IMAGE
@click.option("--partition", "partitions", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File system image (squashfs, ext3 or raw; detected). The first is primary.")
@click.option("--deffile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Definition file to embed.")
@click.option("--json", "json_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON file to embed as a GenericJSON object.")
@click.option("--arch", type=click.Choice(sorted(ARCH_CODES)), default=HOST_ARCH,
              show_default=True, help="Architecture of the partitions.")
@click.option("--launch-script", default="", help="Launch script (under 32 bytes).")
@click.option("--deterministic", is_flag=True,
              help="Nil UUID and zero times, so the same inputs give the same bytes.")
@click.option("--capacity", type=click.IntRange(1, 65536), default=48, show_default=True,
              help="Number of descriptor slots.")
def new(
    image: Path, partitions: tuple[Path, ...], deffile: Path | None, json_files: tuple[Path, ...],
    arch: str, launch_script: str, deterministic: bool, capacity: int,
) -> None:  # fmt: skip
    """Create IMAGE, all objects in group 1.

    \b
    Example:
      mksquashfs rootfs/ root.sqfs && \\
      sif-lifecycle sif new image.sif --deffile app.def --partition root.sqfs
    """
    specs: list[ObjectSpec] = []
    if deffile is not None:
        specs.append(sif_create.deffile_spec(deffile))
    specs += [sif_create.json_spec(p, name=p.name) for p in json_files]
    for i, path in enumerate(partitions):
        specs.append(
            _partition(path, arch, 1, PartType.PRIMARY_SYSTEM if i == 0 else PartType.SYSTEM)
        )
    sif_create.create_image(
        image, specs, launch_script=launch_script.encode(), deterministic=deterministic,
        capacity=capacity,
    )  # fmt: skip
    click.echo(f"Created {image} with {len(specs)} objects")


@sif.command("add")
@IMAGE
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--datatype", type=click.Choice(sorted(DATATYPES)), required=True,
              help="Kind of object.")
@click.option("--group", type=click.IntRange(0, 0x0FFFFFFF), default=1, show_default=True,
              help="Object group (0 = none).")
@click.option("--parttype", type=click.Choice([p.name.lower() for p in PartType]),
              default="system", show_default=True, help="Partition type (partitions only).")
@click.option("--arch", type=click.Choice(sorted(ARCH_CODES)), default=HOST_ARCH,
              show_default=True, help="Partition architecture (partitions only).")
@click.option("--name", default="", help="Object name.")
def add(
    image: Path, data: Path, datatype: str, group: int, parttype: str, arch: str, name: str
) -> None:
    """Append DATA to IMAGE as a new object (in place: existing data is not rewritten).

    Note: adding an object to a signed group makes that group's signatures fail.

    \b
    Example:
      sif-lifecycle sif add image.sif app.def --datatype deffile
    """
    if DATATYPES[datatype] == DataType.PARTITION:
        spec = _partition(data, arch, group, PartType[parttype.upper()])
    else:
        spec = ObjectSpec(DATATYPES[datatype], data, group=group, name=name.encode())
    if name:
        spec = ObjectSpec(spec.data_type, spec.data, spec.group, spec.linked_raw, name.encode(),
                          spec.extra)
    with SifImage.open(image, writable=True) as img:
        desc = img.add(spec)
    click.echo(f"Added object {desc.id} to {image}")


@sif.command("del")
@click.argument("object_id", type=int)
@IMAGE
@click.option("--zero", is_flag=True, help="Overwrite the object's data with zeros.")
@click.option("--compact", is_flag=True, help="Truncate the file after the last object.")
def delete(object_id: int, image: Path, zero: bool, compact: bool) -> None:
    """Delete object OBJECT_ID from IMAGE.

    \b
    Example:
      sif-lifecycle sif del 3 image.sif
    """
    with SifImage.open(image, writable=True) as img:
        if img.object(object_id).is_primary_partition and len(img.objects) > 1:
            click.echo("note: deleting the primary partition resets the image's arch", err=True)
        img.delete([object_id], zero=zero, compact=compact)
    click.echo(f"Deleted object {object_id} from {image}")

