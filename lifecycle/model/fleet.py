"""The fleet as the planner sees it, and the actions it plans: pure, typed data.

Nothing here touches the database or a file, so ``lifecycle.strategies.plan`` (and anything that
only reasons about a fleet) loads without SQLAlchemy. The loaders that build these records from
the store live in :mod:`lifecycle.inventory.fleet`.

An action's ``key`` is its idempotency key: the same intended effect always gets the same key,
so a queue can refuse duplicates and an audit reader can tell that nothing was done twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageStatus


class KeyInfo(NamedTuple):
    fingerprint: str
    dsse_keyid: str
    state: KeyState
    created_at: datetime
    activated_at: datetime | None
    retiring_at: datetime | None
    image_set: str | None
    pgp: bool = False
    """An OpenPGP key: it has an expiry of its own and no certificate."""
    expires_at: datetime | None = None
    """PGP keys: the expiry its newest self-signature states (None: never)."""
    pgp_revoked: bool = False
    """PGP keys: a revocation signature was added (and so is published with the key)."""

    @property
    def signer_id(self) -> str:
        """How the inventory names this key as an image's signer: the DSSE keyid of a PEM key,
        the fingerprint of a PGP key (the Entity its signature descriptors carry, upper case)."""
        return self.dsse_keyid or self.fingerprint.upper()


class CertInfo(NamedTuple):
    serial: str
    key_fingerprint: str
    not_before: datetime
    not_after: datetime
    revoked: bool
    superseded: bool
    """A later certificate re-issues this one."""


class CrlInfo(NamedTuple):
    role: CaRole
    number: int
    this_update: datetime
    next_update: datetime


class ImageState(NamedTuple):
    path: str
    status: ImageStatus
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
    pgp_keys: Mapping[str, str] = field(default_factory=dict)
    """PGP key fingerprint -> content digest of its public key as the store holds it now."""
    key_publications: frozenset[tuple[str, str, str]] = frozenset()
    """(fingerprint, content digest, keyserver URL) of every key version a keyserver took."""


@dataclass(frozen=True)
class Trust:
    """Keys, certificates and CRLs: what publishing and planning both need, without images."""

    keys: tuple[KeyInfo, ...]
    certificates: tuple[CertInfo, ...]
    crls: tuple[CrlInfo, ...]
    revision: str



LIVE = frozenset({KeyState.PENDING, KeyState.ACTIVE, KeyState.RETIRING})
"""The states of a key that signs, or will or still may: its certificate is kept current and it is
published."""


class ActionKind(enum.StrEnum):
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
    EXTEND = "extend"
    """PGP sets: push a key's expiry out with new self-signatures (reissue for PGP)."""
    REVOKE_PGP_KEY = "revoke-pgp-key"
    """PGP sets: add the revocation signature (compromised, or superseded once retired)."""
    PUBLISH_PGP_KEY = "publish-pgp-key"


class ApplyStatus(enum.StrEnum):
    """How applying an action ended (the audit's ``result``)."""

    DONE = "done"
    SKIPPED = "skipped"
    """Already done, or no longer needed."""
    REFUSED = "refused"
    """A re-sign met an image whose signatures do not verify: it is marked tampered."""
    FAILED = "failed"
    """Could not be done now; the queue retries it."""


ORDER = {kind: i for i, kind in enumerate(
    (ActionKind.REVOKE, ActionKind.REVOKE_PGP_KEY, ActionKind.PROVISION, ActionKind.PREPARE,
     ActionKind.CERTIFY, ActionKind.REISSUE, ActionKind.EXTEND, ActionKind.ROTATE,
     ActionKind.CRL_REFRESH, ActionKind.PUBLISH, ActionKind.PUBLISH_PGP_KEY,
     ActionKind.RESIGN, ActionKind.SIGN_EPHEMERAL, ActionKind.PURGE, ActionKind.DROP,
     ActionKind.RETIRE))}
"""Among actions that open at the same moment, the order that makes each one possible."""

_KEY_FIELDS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.PROVISION: ("subject",),
    ActionKind.PREPARE: ("subject", "fingerprint"),
    ActionKind.CERTIFY: ("subject", "revision"),
    ActionKind.REISSUE: ("subject",),
    ActionKind.ROTATE: ("image_set", "fingerprint"),
    ActionKind.RESIGN: ("subject", "fingerprint"),
    ActionKind.DROP: ("subject", "fingerprint"),
    ActionKind.RETIRE: ("subject",),
    ActionKind.REVOKE: ("subject",),
    ActionKind.PURGE: ("subject", "fingerprint"),
    ActionKind.CRL_REFRESH: ("subject", "revision"),
    ActionKind.PUBLISH: ("subject", "revision"),
    ActionKind.SIGN_EPHEMERAL: ("subject", "revision"),
    ActionKind.EXTEND: ("subject", "revision"),
    ActionKind.REVOKE_PGP_KEY: ("subject", "revision"),
    ActionKind.PUBLISH_PGP_KEY: ("fingerprint", "revision"),
}
"""The fields each kind's idempotency key is made of, after the kind (the format the work queue
has always stored: ``resign:<path>:<fingerprint>``). Only the first may contain a colon."""


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    subject: str
    """An image path, a key fingerprint, a certificate serial, an image set or a CA role."""
    due: datetime
    """When it must be done (aware UTC)."""
    not_before: datetime
    """When it may be done, at the earliest (aware UTC)."""
    reason: str
    image_set: str = ""
    fingerprint: str = ""
    """The signing key the action concerns (the active key to re-sign with, the retiring or
    compromised key whose signature goes, the key to rotate away from), '' when none."""
    revision: str = ""
    """What the intended effect is relative to, so a new one gets a new key: the trust revision
    to publish, the CRL number to refresh, the number of certificates a key had, the digest of
    an image's signers."""

    @property
    def key(self) -> str:
        """The idempotency key: the same intended effect always gets the same one."""
        return ":".join((self.kind.value, *(str(getattr(self, name))
                                            for name in _KEY_FIELDS[self.kind])))

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.not_before, ORDER.get(self.kind, len(ORDER)), self.key)

    def ready(self, now: datetime) -> bool:
        return self.not_before <= now

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind.value, "subject": self.subject,
                "due": self.due.astimezone(UTC).isoformat(),
                "not_before": self.not_before.astimezone(UTC).isoformat(),
                "reason": self.reason, "image_set": self.image_set,
                "fingerprint": self.fingerprint, "revision": self.revision}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Action:
        """Read what :meth:`to_dict` wrote, or an older row that stored only the key.

        Raises ``ValueError`` when the kind is unknown or the key does not match the fields.
        """
        kind = ActionKind(doc["kind"])
        named = {"fingerprint": str(doc.get("fingerprint", "")),
                 "revision": str(doc.get("revision", ""))}
        stored = str(doc["key"])
        if "fingerprint" not in doc and "revision" not in doc:  # written before they had fields
            names = _KEY_FIELDS[kind]
            parts = stored.removeprefix(f"{kind.value}:").rsplit(":", len(names) - 1)
            named |= {name: part for name, part in zip(names, parts, strict=False)
                      if name in named}
        action = cls(kind=kind, subject=str(doc["subject"]),
                     due=datetime.fromisoformat(doc["due"]).astimezone(UTC),
                     not_before=datetime.fromisoformat(doc["not_before"]).astimezone(UTC),
                     reason=str(doc["reason"]), image_set=str(doc.get("image_set", "")), **named)
        if action.key != stored:
            raise ValueError(f"action key {stored!r} does not match its fields ({action.key!r})")
        return action


def short(identifier: str) -> str:
    """Enough of an identifier to recognise it in a sentence.

    A hex fingerprint or serial: ``5F3C…09A1``. A prefixed key id keeps its prefix and case
    (base64 is case-sensitive): ``SHA256:x6l8…mFs``.
    """
    prefix, sep, body = identifier.partition(":")
    if sep and prefix.isalnum() and body:
        return prefix + ":" + (body if len(body) <= 8 else f"{body[:4]}…{body[-3:]}")
    text = identifier.upper()
    return text if len(text) <= 10 else f"{text[:4]}…{text[-4:]}"


def day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def minute(when: datetime) -> str:
    """``2027-03-05 14:10 UTC``: for horizons of minutes (ephemeral certificates)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
