"""Verification results: what the reference only reports as pass/fail, itemised per signature.

All frozen: a result is a verdict's record, read by the CLI, the strategies and Python users; no
caller can flip an ``ok`` after the fact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple


class SignatureFormat(StrEnum):
    DSSE = "dsse"
    PGP = "pgp"
    LEGACY = "legacy"
    UNKNOWN = "unknown"


class SignerResult(NamedTuple):
    """One signer inside a signature object (a DSSE envelope can hold several)."""

    signer: str
    """DSSE keyid, or PGP issuer fingerprint / key ID."""
    ok: bool
    key: str | None = None
    """The supplied key (file) that verified it."""
    error: str = ""
    user_id: str = ""
    key_fingerprint: str = ""
    """What the key *is* (SHA-256 of its SubjectPublicKeyInfo, or the PGP primary fingerprint):
    thresholds count these, never files, keyids or certificates."""


class SignatureResult(NamedTuple):
    """One signature object linked to a verified group or object."""

    object_id: int
    group: int
    format: SignatureFormat
    signers: tuple[SignerResult, ...] = ()
    objects: tuple[int, ...] = ()
    """Object IDs whose descriptor and data this signature was checked to cover."""
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and any(s.ok for s in self.signers)

    def verified_keys(self) -> set[str]:
        """The distinct public keys (by key material) that verifiably signed this object."""
        if not self.ok:
            return set()
        return {s.key_fingerprint for s in self.signers if s.ok and s.key_fingerprint}


class TaskResult(NamedTuple):
    """A group (or one object of it) that had to be verified."""

    group: int
    object_id: int | None
    ok: bool
    reason: str = ""
    signatures: tuple[int, ...] = ()


class VerifyReport(NamedTuple):
    path: str
    policy: str
    ok: bool = False
    errors: tuple[str, ...] = ()
    tasks: tuple[TaskResult, ...] = ()
    signatures: tuple[SignatureResult, ...] = ()

    def failure_summary(self) -> str:
        reasons = list(self.errors)
        reasons += [t.reason for t in self.tasks if not t.ok and t.reason]
        return "; ".join(dict.fromkeys(reasons)) or "verification failed"

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        out["tasks"] = tuple(t._asdict() for t in self.tasks)
        out["signatures"] = tuple(
            {**s._asdict(), "format": str(s.format), "ok": s.ok,
             "signers": tuple({k: v for k, v in signer._asdict().items() if k != "key_fingerprint"}
                              for signer in s.signers)}
            for s in self.signatures
        )  # fmt: skip
        return out
