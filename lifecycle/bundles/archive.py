"""A bundle on disk: a directory or a ``.tar.gz``, written atomically and read defensively.

Writing builds everything in a temp directory (or temp file) next to the target and renames it
into place, so a failure leaves nothing. Reading accepts only regular files with plain relative
names (no links, devices, ``..`` or absolute paths) and bounded sizes: a bundle comes from
another machine and is untrusted until its manifest signature checked out.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath

from lifecycle.errors import BundleError
from lifecycle.pki.files import write_atomic

MAX_FILES = 100_000
MAX_TOTAL = 256 << 20
"""Bundles are kilobytes to a few megabytes; anything near this is hostile."""


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def _check_name(name: str, origin: Path) -> str:
    pure = PurePosixPath(name)
    if (not name or pure.is_absolute() or ".." in pure.parts or "\\" in name
            or str(pure) != name.removeprefix("./").rstrip("/")):
        raise BundleError(f"the bundle holds a file with an unsafe name {name!r}", path=origin)
    return str(pure)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tar_bytes(files: Mapping[str, bytes], mtime: datetime) -> bytes:
    """A reproducible tar.gz: sorted names, fixed owner, mode and time."""
    raw = io.BytesIO()
    stamp = int(mtime.timestamp())
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=stamp) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), stamp, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return raw.getvalue()


def write_bundle(out: Path, files: Mapping[str, bytes], mtime: datetime) -> int:
    """Write ``files`` as a directory or tar.gz at ``out`` (which must not exist); bytes on disk."""
    if out.exists() or out.is_symlink():
        raise BundleError("already exists", path=out, hint="choose a new path or remove it first")
    out.parent.mkdir(parents=True, exist_ok=True)
    if is_archive(out):
        data = _tar_bytes(files, mtime)
        write_atomic(out, data, mode=0o644)
        _fsync_dir(out.parent)
        return len(data)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for name, data in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            target.chmod(0o644)
        staging.chmod(0o755)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(out.parent)
    return sum(len(d) for d in files.values())


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every file of the bundle at ``path`` by relative name."""
    if not path.exists():
        raise BundleError("no such bundle", path=path)
    if path.is_dir():
        return _read_directory(path)
    try:
        with tarfile.open(path, mode="r:*") as tar:
            return _read_tar(tar, path)
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"not a readable tar.gz bundle ({exc})", path=path) from None


def _read_tar(tar: tarfile.TarFile, path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for member in tar:
        if member.isdir():
            continue
        name = _check_name(member.name, path)
        if not member.isfile():
            raise BundleError(f"the bundle entry {name!r} is not a regular file", path=path)
        total += member.size
        if len(files) >= MAX_FILES or total > MAX_TOTAL:
            raise BundleError("the bundle is too large", path=path)
        if name in files:
            raise BundleError(f"the bundle holds {name!r} twice", path=path)
        handle = tar.extractfile(member)
        assert handle is not None
        files[name] = handle.read()
    return files


def _read_directory(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            entry = base / name
            rel = entry.relative_to(root).as_posix()
            if entry.is_symlink():
                raise BundleError(f"the bundle entry {rel!r} is a symbolic link", path=root)
            if name in dirnames:
                continue
            if not entry.is_file():
                raise BundleError(f"the bundle entry {rel!r} is not a regular file", path=root)
            total += entry.stat().st_size
            if len(files) >= MAX_FILES or total > MAX_TOTAL:
                raise BundleError("the bundle is too large", path=root)
            files[rel] = entry.read_bytes()
    return files
