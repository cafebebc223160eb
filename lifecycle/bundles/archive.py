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
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath

from lifecycle.bundles.bounded_tar import Limits, Member, TarLimitError, members
from lifecycle.errors import BundleError
from lifecycle.files import open_regular, read_file
from lifecycle.pki.files import write_atomic

LIMITS = Limits()
"""Bundles are kilobytes to a few megabytes; anything near these limits is hostile."""


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


def read_bundle(path: Path, limits: Limits = LIMITS) -> dict[str, bytes]:
    """Every file of the bundle at ``path`` by relative name, within ``limits``."""
    if not path.exists():
        raise BundleError("no such bundle", path=path)
    if path.is_dir():
        return _read_directory(path, limits)
    fd = open_regular(path, "bundle", error=BundleError)
    try:
        with os.fdopen(fd, "rb") as raw:
            return _read_tar(members(raw, limits), path, limits)
    except TarLimitError as exc:
        raise BundleError(f"not a readable tar.gz bundle ({exc})", path=path) from None
    except OSError as exc:
        raise BundleError(f"not a readable tar.gz bundle ({exc.strerror or exc})",
                          path=path) from None


def _add(files: dict[str, bytes], name: str, data: bytes, total: int, limits: Limits,
         origin: Path) -> int:
    if len(files) >= limits.entries or total + len(data) > limits.total_bytes:
        raise BundleError(f"the bundle is too large (limits: {limits.entries} files, "
                          f"{limits.total_bytes >> 20} MiB)", path=origin)
    if name in files:
        raise BundleError(f"the bundle holds {name!r} twice", path=origin)
    files[name] = data
    return total + len(data)


def _read_tar(entries: Iterator[Member], path: Path, limits: Limits) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for member in entries:
        if member.is_dir:
            continue
        name = _check_name(member.name, path)
        if not member.is_file:
            raise BundleError(f"the bundle entry {name!r} is not a regular file", path=path)
        total = _add(files, name, member.data, total, limits, path)
    return files


def _read_directory(root: Path, limits: Limits) -> dict[str, bytes]:
    """Walked with ``scandir`` one entry at a time: every entry (directories too) is counted
    before the next is listed, and each file's size is checked before it is read."""
    files: dict[str, bytes] = {}
    total = 0
    seen = 0
    pending = [root]
    while pending:
        base = pending.pop()
        try:
            with os.scandir(base) as listing:
                for entry in listing:
                    seen += 1
                    if seen > limits.entries:
                        raise BundleError(f"the bundle has more than {limits.entries} entries",
                                          path=root)
                    rel = Path(entry.path).relative_to(root).as_posix()
                    if entry.is_symlink():
                        raise BundleError(f"the bundle entry {rel!r} is a symbolic link", path=root)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        raise BundleError(f"the bundle entry {rel!r} is not a regular file",
                                          path=root)
                    left = limits.total_bytes - total
                    data = read_file(entry.path, limit=left, what="bundle file", error=BundleError)
                    total = _add(files, rel, data, total, limits, root)
        except OSError as exc:
            raise BundleError(f"cannot read the bundle directory ({exc.strerror or exc})",
                              path=base) from None
    return files
