"""What a certificate is, as of a time: computed once, read by every part of a report.

The timeline's bar colours, the tables, the summary cards and the JSON all show this one value,
so they cannot disagree. Pure (no I/O): a function of the certificate, its key and the time.
"""

from __future__ import annotations

import enum
from datetime import datetime

from lifecycle.model.key_state import KeyState


class CertStatus(enum.StrEnum):
    CURRENT = "current"
    """Valid now, its key in use, and no later certificate replaces it."""
    SUPERSEDED = "superseded"
    """Still within its validity, but a later certificate of the same key re-issues it."""
    EXPIRED = "expired"
    """Its ``notAfter`` has passed."""
    REVOKED = "revoked"
    """On its CA's revocation list."""
    RETIRED = "retired"
    """Within its validity, but its key is retired: nothing new is signed with it."""


RETIRED_KEYS = frozenset({KeyState.RETIRED, KeyState.REVOKED, KeyState.COMPROMISED})


def certificate_status(*, not_after: datetime, revoked: bool, superseded: bool,
                       key_state: KeyState | None, now: datetime) -> CertStatus:
    """The one status: revoked, then expired, then retired, then superseded, else current."""
    if revoked:
        return CertStatus.REVOKED
    if not_after <= now:
        return CertStatus.EXPIRED
    if key_state in RETIRED_KEYS:
        return CertStatus.RETIRED
    return CertStatus.SUPERSEDED if superseded else CertStatus.CURRENT
