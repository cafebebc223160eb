"""When an OpenPGP key is valid: its expiry and revocation as a verifier saw them at a time.

A key's expiry is carried by its self-signatures (RFC 9580 5.2.3.13: key expiration time, counted
from the key's creation). Extending a key adds a newer self-signature, so the expiry in force at
a time is the one of the newest self-signature made by then, and a revocation counts from the
moment it was made. ``verify --at`` asks these questions for any instant.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from lifecycle.integrity.pgp import quiet


class PgpRevocationReason(enum.IntEnum):
    """Reason-for-revocation codes (RFC 9580 5.2.3.31) this tool writes and reports."""

    NOT_SPECIFIED = 0
    SUPERSEDED = 1
    COMPROMISED = 2
    RETIRED = 3


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _self_signatures(key: Any, at: datetime | None) -> list[Any]:
    """Positive/generic self-certifications of every user ID, made by ``at`` (all when None)."""
    out = []
    with quiet():
        for uid in key.userids:
            for sig in uid._signatures:
                signer = sig.signer_fingerprint or sig.signer
                if signer and key.fingerprint == signer and sig.type.name.endswith("_Cert") \
                        and (at is None or _aware(sig.created) <= at):
                    out.append(sig)
    return out


def expiry_at(key: Any, at: datetime | None = None) -> datetime | None:
    """The key's expiry as stated by its newest self-signature made by ``at`` (None: never)."""
    sigs = _self_signatures(key, at)
    if not sigs:
        sigs = _self_signatures(key, None)  # signed before any self-signature: use the first
        sigs = sigs[:1]
    newest = max(sigs, key=lambda s: _aware(s.created), default=None)
    if newest is None or newest.key_expiration is None:
        return None
    expires: datetime = _aware(key.created) + newest.key_expiration
    return expires


def revocation_at(key: Any, at: datetime | None = None) -> tuple[datetime, PgpRevocationReason
                                                                 ] | None:
    """(time, reason) of the earliest key revocation in force at ``at`` (None: any), or None.

    As go-crypto judges it: a revocation counts from its creation, except reason "compromised",
    which counts at every time (the key may have been misused before it was revoked).
    """
    found: list[tuple[datetime, PgpRevocationReason]] = []
    with quiet():
        for sig in key.revocation_signatures:
            created = _aware(sig.created)
            code = 0
            if sig._signature.subpackets["ReasonForRevocation"]:
                code = int(next(iter(sig._signature.subpackets["ReasonForRevocation"])).code)
            try:
                reason = PgpRevocationReason(code)
            except ValueError:
                reason = PgpRevocationReason.NOT_SPECIFIED
            if at is not None and created > at and reason is not PgpRevocationReason.COMPROMISED:
                continue
            found.append((created, reason))
    return min(found, default=None)
