"""``ecl.toml``: the Execution Control List SingularityCE and Apptainer read, from the PGP sets.

The ECL admits an image by the OpenPGP fingerprints of its signers, per directory
(``[[execgroup]]`` with ``tagname``, ``mode``, ``dirpath``, ``keyfp``). It holds PGP fingerprints
only, so sets signed with PEM keys are named in a comment and never listed. An activated ECL
with a group that names no fingerprint would refuse every image, so a set without a current PGP
key gets no group, and with no group at all the file says ``activated = false``.

``whitelist`` mode (any one listed key suffices) is used, because during a rotation's overlap an
image is signed by the retiring key, the new one, or both.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from lifecycle.bundles.render import render
from lifecycle.config import KeyType, Policies
from lifecycle.errors import BundleError
from lifecycle.inventory.fleet import load_trust
from lifecycle.model.fleet import LIVE
from lifecycle.store.key_service import KeyService

ALL_DIRECTORIES = ""
"""``dirpath = ""``: the group applies wherever the image is."""
DEFAULT_TAGNAME = "sif-lifecycle"
UNASSIGNED = "unassigned"
"""Where PGP signing keys of the store that belong to no image set (used by ``sign --key``)
are listed."""
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
_WILDCARD = re.compile(r"[*?\[]")


class EclMode(enum.StrEnum):
    WHITELIST = "whitelist"
    """Signed by at least one of the listed keys."""
    WHITESTRICT = "whitestrict"
    """Signed by every listed key."""
    BLACKLIST = "blacklist"
    """Signed by none of the listed keys."""


@dataclass(frozen=True)
class SetKeys:
    """One image set as the ECL sees it: its key type, directory and current fingerprints."""

    name: str
    key_type: KeyType
    dirpath: str
    fingerprints: tuple[str, ...]


@dataclass(frozen=True)
class ExecGroup:
    tagname: str
    mode: EclMode
    dirpath: str
    keyfp: tuple[str, ...]


def set_directory(paths: Iterable[str]) -> str:
    """The one directory all of a set's globs name files in (``/srv/a/*.sif``), else "".

    The ECL matches an image's directory exactly, so a set spread over several directories or
    with a wildcard above the file name (``/srv/**/x.sif``) has no single dirpath.
    """
    parents = set()
    for glob in paths:
        parent = PurePosixPath(glob).parent
        if _WILDCARD.search(str(parent)) or not parent.is_absolute():
            return ALL_DIRECTORIES
        parents.add(str(parent))
    return parents.pop() if len(parents) == 1 else ALL_DIRECTORIES


def current_sets(keys: KeyService, policies: Policies | None = None,
                 dirpath: str = ALL_DIRECTORIES) -> list[SetKeys]:
    """Every image set with keys in the store (and every configured one), with the fingerprints
    of its PGP keys that sign or may still sign (pending, active, retiring). PGP keys of no
    set are listed as the set ``unassigned``, with ``dirpath``.

    ``policies`` give each set's key type and directory; without them (a bundle exported with
    no configuration) a set's type is that of its keys and every set gets ``dirpath``.
    """
    kinds = {row.fingerprint: row.kind for row in keys.list()}
    with keys.engine.connect() as conn:
        linked = load_trust(conn).keys
    by_set: dict[str, list[str]] = {}
    types: dict[str, KeyType] = {}
    for key in linked:
        kind = KeyType(kinds.get(key.fingerprint, KeyType.PEM.value))
        name = key.image_set or UNASSIGNED
        if key.image_set is None and kind is KeyType.PEM:
            continue
        types.setdefault(name, kind)
        if kind is KeyType.PGP:
            types[name] = kind
        if kind is KeyType.PGP and key.state in LIVE:
            by_set.setdefault(name, []).append(key.fingerprint.upper())
    names = sorted(set(types) | {p.name for p in (policies.image_sets if policies else ())})
    out = []
    for name in names:
        policy = policies.get(name) if policies is not None else None
        key_type = policy.key_type if policy is not None else types.get(name, KeyType.PEM)
        where = set_directory(policy.paths) if policy is not None else dirpath
        fprs = tuple(sorted(set(by_set.get(name, ())))) if key_type is KeyType.PGP else ()
        out.append(SetKeys(name, key_type, where, fprs))
    return out


def exec_groups(sets: Sequence[SetKeys], tagname: str = DEFAULT_TAGNAME) -> list[ExecGroup]:
    """One whitelist group per directory (sets sharing one are merged: a dirpath may appear in
    one group only); sets with no current PGP fingerprint contribute nothing."""
    merged: dict[str, list[SetKeys]] = {}
    for entry in sets:
        if entry.key_type is KeyType.PGP and entry.fingerprints:
            merged.setdefault(entry.dirpath, []).append(entry)
    groups = []
    for dirpath, members in sorted(merged.items()):
        tag = tagname if len(merged) == 1 else f"{tagname}-{'-'.join(m.name for m in members)}"
        fprs = tuple(sorted({f for m in members for f in m.fingerprints}))
        groups.append(ExecGroup(tag, EclMode.WHITELIST, dirpath, fprs))
    return groups


def render_ecl(sets: Sequence[SetKeys], tagname: str = DEFAULT_TAGNAME) -> str:
    groups = [{"tagname": g.tagname, "mode": g.mode.value, "dirpath": g.dirpath,
               "keyfp": list(g.keyfp)} for g in exec_groups(sets, tagname)]
    return render("bundle/ecl.toml.j2", groups=groups,
                  pem_sets=[s.name for s in sets if s.key_type is KeyType.PEM],
                  waiting_sets=[s.name for s in sets
                                if s.key_type is KeyType.PGP and not s.fingerprints]).decode()


def bundle_ecl(keys: KeyService, *, tagname: str = DEFAULT_TAGNAME,
               dirpath: str = ALL_DIRECTORIES, policies: Policies | None = None) -> bytes:
    """The bundle's ``ecl.toml``, checked against the ECL rules before it is written."""
    text = render_ecl(current_sets(keys, policies, dirpath), tagname)
    check_ecl(text, source="ecl.toml")
    return text.encode()


def check_ecl(text: str, *, source: str) -> list[ExecGroup]:
    """Parse ``text`` with the rules SingularityCE/Apptainer apply to ecl.toml; BundleError if
    one fails, or if it is activated and could admit nothing."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(f"not valid TOML: {exc}", path=source) from None
    unknown = set(doc) - {"activated", "legacyinsecure", "execgroup"}
    if unknown:
        raise BundleError(f"unknown key {sorted(unknown)[0]!r}", path=source)
    for key in ("activated", "legacyinsecure"):
        if not isinstance(doc.get(key, False), bool):
            raise BundleError(f"{key} must be true or false", path=source)
    groups = []
    seen: set[str] = set()
    for i, raw in enumerate(doc.get("execgroup", [])):
        where = f"execgroup[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"tagname", "mode", "dirpath", "keyfp"}:
            raise BundleError(f"{where} has keys other than tagname, mode, dirpath, keyfp",
                              path=source)
        try:
            mode = EclMode(str(raw.get("mode")))
        except ValueError:
            raise BundleError(f"{where}.mode must be one of {', '.join(EclMode)}",
                              path=source) from None
        dirpath = raw.get("dirpath", ALL_DIRECTORIES)
        if not isinstance(dirpath, str) or (dirpath and not dirpath.startswith("/")):
            raise BundleError(f"{where}.dirpath must be an absolute directory or \"\"",
                              path=source)
        if dirpath in seen:
            raise BundleError(f"{where}.dirpath {dirpath!r} is in two groups", path=source)
        seen.add(dirpath)
        keyfp = raw.get("keyfp", [])
        if not isinstance(keyfp, list) or not all(
                isinstance(f, str) and _FINGERPRINT.fullmatch(f) for f in keyfp):
            raise BundleError(f"{where}.keyfp must list 40-hex-digit fingerprints", path=source)
        if not keyfp and mode is not EclMode.BLACKLIST:
            raise BundleError(f"{where} admits no key: every image would be refused",
                              path=source)
        groups.append(ExecGroup(str(raw.get("tagname", "")), mode, dirpath, tuple(keyfp)))
    if doc.get("activated", False) and not groups:
        raise BundleError("activated with no execgroup: every image would be refused",
                          path=source)
    return groups
