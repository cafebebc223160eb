"""The fleet as the planner sees it, and the actions it plans: pure, typed data.

Nothing here touches the database or a file, so ``lifecycle.strategies.plan`` (and anything that
only reasons about a fleet) loads without SQLAlchemy. The loaders that build these records from
the store live in :mod:`lifecycle.inventory.fleet`.

An action's ``key`` is its idempotency key: the same intended effect always gets the same key,
so a queue can refuse duplicates and an audit reader can tell that nothing was done twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple


class KeyInfo(NamedTuple):
    fingerprint: str
    dsse_keyid: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retiring_at: datetime | None
    image_set: str | None


class CertInfo(NamedTuple):
    serial: str
    key_fingerprint: str
    not_before: datetime
    not_after: datetime
    revoked: bool
    superseded: bool
    """A later certificate re-issues this one."""


class CrlInfo(NamedTuple):
    role: str
    number: int
    this_update: datetime
    next_update: datetime


class ImageState(NamedTuple):
    path: str
    status: str
    signers: frozenset[str]


@dataclass(frozen=True)
class FleetState:
    keys: tuple[KeyInfo, ...] = ()
    certificates: tuple[CertInfo, ...] = ()
    """Code-signing (leaf) certificates only."""
    crls: tuple[CrlInfo, ...] = ()
    images: tuple[ImageState, ...] = ()
    trust_revision: str = ""
    """Changes whenever keys, certificates, revocations or CRLs change."""
    published: Mapping[str, str] = field(default_factory=dict)
    """Image set -> trust revision found in its publish directory's manifest."""
    logged: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Identity -> DSSE keyids of the ephemeral signatures applied (and verified) for it."""


@dataclass(frozen=True)
class Trust:
    """Keys, certificates and CRLs: what publishing and planning both need, without images."""

    keys: tuple[KeyInfo, ...]
    certificates: tuple[CertInfo, ...]
    crls: tuple[CrlInfo, ...]
    revision: str



PROVISION = "provision"
PREPARE = "prepare"
CERTIFY = "certify"
REISSUE = "reissue"
ROTATE = "rotate"
RESIGN = "resign"
DROP = "drop"
RETIRE = "retire"
REVOKE = "revoke"
PURGE = "purge"
CRL_REFRESH = "crl-refresh"
PUBLISH = "publish"
SIGN_EPHEMERAL = "sign-ephemeral"

ORDER = {kind: i for i, kind in enumerate(
    (REVOKE, PROVISION, PREPARE, CERTIFY, REISSUE, ROTATE, CRL_REFRESH, PUBLISH, RESIGN,
     SIGN_EPHEMERAL, PURGE, DROP, RETIRE))}
"""Among actions that open at the same moment, the order that makes each one possible."""


@dataclass(frozen=True)
class Action:
    key: str
    kind: str
    subject: str
    """An image path, a key fingerprint, a certificate serial, an image set or a CA role."""
    due: datetime
    """When it must be done (aware UTC)."""
    not_before: datetime
    """When it may be done, at the earliest (aware UTC)."""
    reason: str
    image_set: str = ""

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.not_before, ORDER.get(self.kind, len(ORDER)), self.key)

    def ready(self, now: datetime) -> bool:
        return self.not_before <= now

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["due"] = self.due.astimezone(UTC).isoformat()
        out["not_before"] = self.not_before.astimezone(UTC).isoformat()
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Action:
        return cls(key=doc["key"], kind=doc["kind"], subject=doc["subject"],
                   due=datetime.fromisoformat(doc["due"]).astimezone(UTC),
                   not_before=datetime.fromisoformat(doc["not_before"]).astimezone(UTC),
                   reason=doc["reason"], image_set=doc.get("image_set", ""))


def short(identifier: str) -> str:
    """``5F3C..09A1``: enough of a fingerprint or serial to recognise it in a sentence."""
    text = identifier.upper()
    return text if len(text) <= 10 else f"{text[:4]}..{text[-4:]}"


def day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")
