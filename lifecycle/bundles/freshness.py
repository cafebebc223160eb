"""Rollback and freeze protection for bundles, on TUF's model.

A bundle's signed manifest carries a ``version`` (one more with every export by the same bundle
key) and an expiry (``valid_until``). The trust store remembers the highest version imported per
bundle key with its manifest digest. Refused: a lower version (rollback: an older bundle replayed,
say one from before a key was revoked), the same version with other content (two bundles cannot
both be version N), and an expired bundle (freeze: revocation data that may be outdated) unless
the user overrides it explicitly, with a reason that is printed as a warning. Rollback has no
override.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lifecycle.bundles import manifest as mf
from lifecycle.bundles.trust import TrustState
from lifecycle.errors import BundleVerificationError, LifecycleError


@dataclass(frozen=True)
class StaleOverride:
    """``--allow-stale REASON``: accept an expired bundle, loudly, for a stated reason."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise LifecycleError("--allow-stale needs a reason (it is printed with the warning)",
                                 hint='e.g. --allow-stale "site offline until the next courier"')


def check_version(state: TrustState, keyid: str, manifest: mf.Manifest, digest: str,
                  path: Path) -> str:
    """Refuse a rollback; remember a newer version in ``state``; a note on what was seen."""
    known = state.versions.get(keyid)
    if known is not None:
        highest = int(known["version"])
        if manifest.version < highest:
            raise BundleVerificationError(
                f"ROLLBACK: this bundle is version {manifest.version} (created "
                f"{manifest.created.isoformat()}), older than version {highest} imported before "
                f"(created {known.get('created', '?')})", path=path,
                hint="an older bundle may trust keys revoked since; carry the newest bundle")
        if manifest.version == highest:
            if known.get("manifest_sha256") != digest:
                raise BundleVerificationError(
                    f"this bundle is version {highest} but differs from the version {highest} "
                    "imported before", path=path,
                    hint="two exports cannot share a version: ask the exporting site")
            return f"bundle version {highest}, as imported before"
    state.versions[keyid] = {"version": manifest.version, "manifest_sha256": digest,
                             "created": manifest.created.isoformat()}
    was = f" (was {known['version']})" if known is not None else ""
    return f"bundle version {manifest.version}{was}"


def check_expiry(manifest: mf.Manifest, at: datetime, override: StaleOverride | None,
                 path: Path) -> str:
    """Refuse an expired bundle unless overridden; the warning to print when overridden."""
    if at <= manifest.valid_until:
        return ""
    message = (f"bundle is STALE: valid until {manifest.valid_until.isoformat()}, checked at "
               f"{at.isoformat()}; its revocation data may be outdated")
    if override is None:
        raise BundleVerificationError(
            message, path=path, hint="carry a newer bundle; or, knowingly, pass "
                                     "--allow-stale REASON")
    return f"WARNING: {message}; ACCEPTED ONLY BECAUSE --allow-stale: {override.reason}"
