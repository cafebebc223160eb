"""The SIF container format: read, stream, create, append and delete objects (no crypto)."""

from lifecycle.sif.create import create_image, deffile_spec, json_spec, partition_spec
from lifecycle.sif.format import (
    ZERO_TIME,
    DataType,
    Descriptor,
    FsType,
    HashType,
    Header,
    PartType,
)
from lifecycle.sif.image import ObjectSpec, SifImage

__all__ = [
    "ZERO_TIME",
    "DataType",
    "Descriptor",
    "FsType",
    "HashType",
    "Header",
    "ObjectSpec",
    "PartType",
    "SifImage",
    "create_image",
    "deffile_spec",
    "json_spec",
    "partition_spec",
]
