"""Verification results: what the reference only reports as pass/fail, itemised per signature."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SignerResult:
    """One signer inside a signature object (a DSSE envelope can hold several)."""

    signer: str
    """DSSE keyid, or PGP issuer fingerprint / key ID."""
    ok: bool
    key: str | None = None
    """The supplied key (file) that verified it."""
    error: str = ""
    user_id: str = ""


@dataclass
class SignatureResult:
    """One signature object linked to a verified group or object."""

    object_id: int
    group: int
    format: str
    """``dsse``, ``pgp``, ``legacy`` or ``unknown``."""
    signers: list[SignerResult] = field(default_factory=list)
    objects: list[int] = field(default_factory=list)
    """Object IDs whose descriptor and data this signature was checked to cover."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and any(s.ok for s in self.signers)

    def verified_keys(self) -> set[str]:
        return {s.key for s in self.signers if s.ok and s.key} if self.ok else set()


@dataclass
class TaskResult:
    """A group (or one object of it) that had to be verified."""

    group: int
    object_id: int | None
    ok: bool
    reason: str = ""
    signatures: list[int] = field(default_factory=list)


@dataclass
class VerifyReport:
    path: str
    policy: str
    ok: bool = False
    errors: list[str] = field(default_factory=list)
    tasks: list[TaskResult] = field(default_factory=list)
    signatures: list[SignatureResult] = field(default_factory=list)

    def failure_summary(self) -> str:
        reasons = list(self.errors)
        reasons += [t.reason for t in self.tasks if not t.ok and t.reason]
        return "; ".join(dict.fromkeys(reasons)) or "verification failed"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for sig, result in zip(out["signatures"], self.signatures, strict=True):
            sig["ok"] = result.ok
        return out
