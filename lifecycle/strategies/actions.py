"""An action: one intended effect, with its window and a reason a human can check.

``key`` is the idempotency key: the same intended effect always gets the same key, so a queue can
refuse duplicates and an audit reader can tell that nothing was done twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

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
