"""What a report holds: plain data, gathered once and rendered as HTML, Markdown or JSON.

Every renderer reads these values and nothing else, so the three formats cannot disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from lifecycle.model.cert_status import CertStatus
from lifecycle.model.fleet import Action
from lifecycle.model.key_state import KeyState
from lifecycle.reports.forecast import Forecast
from lifecycle.reports.stock_ocsp import StockOcsp
from lifecycle.store.key_publications import KeyPublicationStatus


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _iso(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(item) for item in value]
    return value


@dataclass(frozen=True)
class KeyRow:
    fingerprint: str
    image_set: str
    state: KeyState
    created_at: datetime
    activated_at: datetime | None
    ends: datetime | None
    """When its signatures are dropped (retiring + overlap), or None while it is kept."""
    expires_at: datetime | None = None
    """PGP keys: the expiry its newest self-signature states (extensions move it)."""


@dataclass(frozen=True)
class CertRow:
    serial: str
    key_fingerprint: str
    image_set: str
    not_before: datetime
    not_after: datetime
    renewal_opens: datetime | None
    revoked_at: datetime | None
    revocation_reason: str
    superseded: bool
    status: CertStatus
    """Computed once (:func:`~lifecycle.model.cert_status.certificate_status`) at the report
    time; the timeline, the tables and the JSON all show this value."""


@dataclass(frozen=True)
class CrlRow:
    role: str
    number: int
    this_update: datetime
    next_update: datetime
    expired: bool


@dataclass(frozen=True)
class SetSummary:
    name: str
    strategy: str
    present: int
    removed: int
    tampered: int
    signed_by: tuple[str, ...]
    """Fingerprints of the store keys whose signatures its images carry."""
    certificate_until: datetime | None
    """The earliest date one of its present images stops verifying with stock --certificate."""
    verifiable_until: datetime | None
    """The earliest date one of its present images stops verifying with this tool (None: never)."""


@dataclass(frozen=True)
class TamperedRow:
    path: str
    image_set: str
    at: datetime | None
    event: str
    detail: str


@dataclass(frozen=True)
class LogStatus:
    origin: str
    size: int
    newest_entry: datetime | None
    verifier_key: str


@dataclass(frozen=True)
class BundleStatus:
    path: str
    created: datetime
    valid_until: datetime
    stale: bool


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    sets: tuple[SetSummary, ...] = ()
    keys: tuple[KeyRow, ...] = ()
    certificates: tuple[CertRow, ...] = ()
    crls: tuple[CrlRow, ...] = ()
    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = ()
    forecasts: tuple[Forecast, ...] = ()
    tampered: tuple[TamperedRow, ...] = ()
    log: LogStatus | None = None
    bundle: BundleStatus | None = None
    expiring: tuple[CertRow, ...] = ()
    """Current certificates that expire within ``EXPIRING_WITHIN`` of the report time with
    nothing planned that renews them (or retires their key) in time."""
    stock_ocsp: tuple[StockOcsp, ...] = ()
    """Per image set: does stock ``verify --ocsp-verify`` work with its current chain."""
    key_publications: tuple[KeyPublicationStatus, ...] = ()
    """Each PGP key of a set on each configured keyserver: published or pending."""

    @property
    def certificate_counts(self) -> dict[CertStatus, int]:
        """How many certificates have each status (every status, zeros included)."""
        return {status: sum(1 for c in self.certificates if c.status == status)
                for status in CertStatus}

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "sets": [_iso(asdict(s)) for s in self.sets],
            "keys": [_iso(asdict(x)) for x in self.keys],
            "certificates": [_iso(asdict(c)) for c in self.certificates],
            "certificate_statuses": {str(k): n for k, n in self.certificate_counts.items()},
            "expiring_certificates": [c.serial for c in self.expiring],
            "crls": [_iso(asdict(c)) for c in self.crls],
            "actions": [a.to_dict() | {"ready": a.ready(self.generated_at)}
                        for a in self.actions],
            "notes": list(self.notes),
            "forecasts": [f.to_dict() for f in self.forecasts],
            "tampered": [_iso(asdict(t)) for t in self.tampered],
            "log": _iso(asdict(self.log)) if self.log else None,
            "bundle": _iso(asdict(self.bundle)) if self.bundle else None,
            "stock_ocsp": [asdict(s) for s in self.stock_ocsp],
            "key_publications": [_iso(dict(p._asdict())) for p in self.key_publications],
        }
