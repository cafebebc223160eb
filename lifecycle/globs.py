"""Path globs as the config writes them: ``*`` within one directory, ``**`` across directories.

Paths stay strings (``os.path``, not ``pathlib``): a scan of 10,000 images spends its time here.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from functools import lru_cache

from lifecycle.files import special_kind

log = logging.getLogger(__name__)

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex matching what ``glob.glob(pattern, recursive=True)`` would find."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1:end]
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def covers(root: str, path: str) -> bool:
    """Whether ``path`` (absolute) falls under ``root``: a glob, a directory or a file."""
    if is_glob(root):
        return compile_glob(root).match(path) is not None
    return path == root or path.startswith(root.rstrip("/") + "/")


def expand(roots: Iterable[str]) -> Iterator[str]:
    """Absolute paths of the files ``roots`` name; directories contribute their ``*.sif`` files.

    A FIFO, device or socket found by a glob or directory walk is skipped with a warning:
    opening one would hang the scan. A root named explicitly is yielded whatever it is, so
    the reader refuses it with an error naming it.
    """
    seen: set[str] = set()
    for root in roots:
        if is_glob(root):
            found = sorted(glob.glob(root, recursive=True))  # noqa: PTH207
        elif os.path.isdir(root):  # noqa: PTH112
            pattern = os.path.join(glob.escape(root), "**", "*.sif")  # noqa: PTH118
            found = sorted(glob.glob(pattern, recursive=True))  # noqa: PTH207
        else:
            found = [root]
        for path in found:
            if path in seen or (path != root and not _regular(path)):
                continue
            seen.add(path)
            yield path


def _regular(path: str) -> bool:
    """Whether a walked path is a regular file; warns about special files (never directories)."""
    try:
        mode = os.stat(path).st_mode  # noqa: PTH116
    except OSError:
        return True  # vanished or unreadable: the reader reports it
    kind = special_kind(mode)
    if kind is not None and not stat.S_ISDIR(mode):
        log.warning("skipping %s: %s, not a regular file", path, kind)
    return kind is None
