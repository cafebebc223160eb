"""The trust store of an offline site: pinned bundle keys and the newest checkpoint of each log.

One JSON file, replaced atomically. The first bundle ever imported pins its signing key (trust
on first use, announced loudly) unless a key is pinned explicitly; from then on, a bundle signed
by any other key is rejected. For each bundle key it remembers the highest bundle version
imported (and that bundle's manifest digest), so an older bundle is refused as a rollback. For
each log it remembers the newest checkpoint seen, so a later bundle must prove the log only grew.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.errors import BundleError
from lifecycle.pki.files import write_atomic

ENV_TRUST_STORE = "SIF_LIFECYCLE_TRUST_STORE"
FILE = "trust.json"
VERSION = 1


def default_trust_store() -> Path:
    """$SIF_LIFECYCLE_TRUST_STORE, else ``~/.local/share/sif-lifecycle/bundles``."""
    env = os.environ.get(ENV_TRUST_STORE)
    return Path(env) if env else Path.home() / ".local" / "share" / "sif-lifecycle" / "bundles"


@dataclass
class TrustState:
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    """DSSE keyid -> {"public_key": PEM, "pinned_at": ISO time, "how": "first use"|"explicit"}."""
    logs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Log origin -> {"verifier_key": ..., "checkpoint": signed checkpoint text}."""
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """DSSE keyid -> {"version": highest imported, "manifest_sha256": ..., "created": ISO time}."""

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "bundle_keys": self.keys, "logs": self.logs,
                "bundle_versions": self.versions}


def load(directory: Path) -> TrustState:
    path = directory / FILE
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return TrustState()
    except (OSError, ValueError) as exc:
        raise BundleError(f"unreadable trust store ({exc})", path=path,
                          hint="restore it from a backup; deleting it re-trusts the next bundle") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise BundleError("not a sif-lifecycle trust store (version 1)", path=path)
    versions = doc.get("bundle_versions", {})
    if not isinstance(versions, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("version"), int) for v in versions.values()):
        raise BundleError("the trust store's bundle_versions are malformed", path=path,
                          hint="restore it from a backup")
    return TrustState(dict(doc.get("bundle_keys", {})), dict(doc.get("logs", {})), versions)


def save(directory: Path, state: TrustState) -> None:
    data = (json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n").encode()
    write_atomic(directory / FILE, data, mode=0o600)
