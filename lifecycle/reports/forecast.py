"""The forecast: until when one image keeps verifying, three ways, and what keeps it going.

Pure: the same state, policy, plan and time always give the same answer, so a report written
for ``--at 2029-01-01`` says what the service will know then, and tests compute it by hand.

- stock ``singularity verify --certificate``: validates the leaf at *now*, so the image verifies
  until the latest ``notAfter`` among the unrevoked certificates of the keys that signed it.
- stock ``--key``: a bare public key never expires; the image verifies with it until that key's
  signature is dropped (the overlap after the key starts retiring), or indefinitely.
- this tool, by proven time: a signature carrying RFC 3161 tokens verified against the CA's
  TSA roots (recorded by the inventory, :mod:`lifecycle.inventory.proofs`) is judged at its
  proven signing time, so it verifies indefinitely, after stock tools stop on its certificate's
  end date, if a certificate of its key was valid then and not revoked as of an earlier date
  (the invalidity date of a key compromise). Images with no such signature: no column value.
- PGP-signed images (stock ``singularity verify`` fetching the signers' keys from the keyserver,
  shown in the certificate column): every signature object must verify (spec 6.4), so the image
  verifies until the earliest expiry among its signers' keys, and not at all once one is revoked.
- this tool: log evidence proves when a signature was made, so an image whose signatures the
  service logged (ephemeral signing) verifies indefinitely, long after its minutes-long
  certificate expired; otherwise as long as the certificate does, or indefinitely while a planned
  action (a re-issue, a rotation and re-signing) renews it.

An ephemeral signature's key is discarded after signing: stock ``--key`` has nothing to use, and
stock ``--certificate`` works only while its certificate (minutes) is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.config import ImageSetPolicy, Strategy
from lifecycle.model.fleet import (
    Action,
    ActionKind,
    CertInfo,
    ImageState,
    KeyInfo,
    day,
    minute,
    short,
)
from lifecycle.model.key_state import KeyState
from lifecycle.model.status import ImageStatus

_UNTRUSTED = {KeyState.COMPROMISED, KeyState.REVOKED, KeyState.RETIRED}
_KEEPS = {ActionKind.REISSUE, ActionKind.CERTIFY, ActionKind.ROTATE, ActionKind.PREPARE,
          ActionKind.PROVISION, ActionKind.RESIGN, ActionKind.EXTEND}
"""Action kinds that extend how long an image verifies (drops and purges do not)."""


@dataclass(frozen=True)
class Horizon:
    """How long a verification keeps succeeding: ``verifies`` now, ``until`` (None: no end)."""

    verifies: bool
    until: datetime | None
    basis: str

    @property
    def text(self) -> str:
        if not self.verifies:
            return "no"
        return "indefinitely" if self.until is None else day(self.until)

    def to_dict(self) -> dict[str, Any]:
        return {"verifies": self.verifies, "until": self.until.isoformat() if self.until else None,
                "text": self.text, "basis": self.basis}


@dataclass(frozen=True)
class Forecast:
    path: str
    image_set: str
    status: ImageStatus
    signers: tuple[str, ...]
    """Fingerprints of the store keys whose signatures the image carries, then the DSSE key ids
    of its logged (ephemeral) signatures."""
    certificate: Horizon
    key: Horizon
    tool: Horizon
    keeps_verifiable: Action | None
    logged: tuple[str, ...] = ()
    """DSSE key ids of its signatures with transparency-log evidence."""
    identity: str = ""
    """The signer identity the logged signatures must name (ephemeral sets)."""
    proven: Horizon | None = None
    """This tool judging signatures at their proven (RFC 3161) signing time; None when no
    signature of the image carries timestamp tokens."""
    proven_by: str = ""
    """The certificate (serial) the ``proven`` horizon relies on, when it verifies."""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "image_set": self.image_set, "status": self.status,
                "signers": list(self.signers), "logged": list(self.logged),
                "identity": self.identity, "certificate": self.certificate.to_dict(),
                "key": self.key.to_dict(), "tool": self.tool.to_dict(),
                "proven": self.proven.to_dict() if self.proven else None,
                "proven_by": self.proven_by,
                "keeps_verifiable": self.keeps_verifiable.to_dict()
                if self.keeps_verifiable else None}


@dataclass(frozen=True)
class FleetIndex:
    """Keys, certificates and the plan indexed once, so a forecast per image costs O(signers).

    A fleet of 100,000 images with 10,000 certificates and 50,000 planned actions would
    otherwise scan every certificate and action for every image.
    """

    keys: Mapping[str, KeyInfo]
    """By DSSE key id and by fingerprint (PGP signers are named by fingerprint)."""
    certificates: Mapping[str, tuple[CertInfo, ...]]
    """By key fingerprint."""
    actions: Mapping[str, tuple[Action, ...]]
    """Actions that keep images verifiable, by subject; set-level ones also under ``set:NAME``."""
    ephemeral: Mapping[str, CertInfo] = field(default_factory=dict)
    """Ephemeral leaf certificates by the DSSE key id of the key they certify."""
    invalid_since: Mapping[str, datetime] = field(default_factory=dict)
    """Revoked certificates by serial: since when invalid (invalidity date, else revocation)."""

    @classmethod
    def build(cls, keys: Iterable[KeyInfo], certs: Iterable[CertInfo],
              plan: Iterable[Action], ephemeral: Iterable[CertInfo] = (),
              invalid_since: Mapping[str, datetime] | None = None) -> FleetIndex:
        by_id: dict[str, KeyInfo] = {}
        for key in keys:
            by_id[key.fingerprint] = key
            if key.dsse_keyid:
                by_id[key.dsse_keyid] = key
        by_key: dict[str, list[CertInfo]] = {}
        for cert in certs:
            by_key.setdefault(cert.key_fingerprint, []).append(cert)
        by_subject: dict[str, list[Action]] = {}
        for action in plan:
            if action.kind in (ActionKind.PREPARE, ActionKind.PROVISION):
                by_subject.setdefault("set:" + action.image_set, []).append(action)
            elif action.kind in _KEEPS or action.kind == ActionKind.ROTATE:
                by_subject.setdefault(action.subject, []).append(action)
        return cls(by_id, {f: tuple(c) for f, c in by_key.items()},
                   {s: tuple(a) for s, a in by_subject.items()},
                   {c.key_fingerprint: c for c in ephemeral}, dict(invalid_since or {}))

    def signers(self, image: ImageState) -> list[KeyInfo]:
        found = {self.keys[s].fingerprint: self.keys[s] for s in sorted(image.signers)
                 if s in self.keys}
        return sorted(found.values(), key=lambda key: (
            key.activated_at or key.created_at, key.created_at, key.fingerprint))

    def certs_of(self, keys: Iterable[KeyInfo]) -> list[CertInfo]:
        return [c for key in keys for c in self.certificates.get(key.fingerprint, ())]

    def rotation(self, fingerprint: str) -> Action | None:
        return next((a for a in self.actions.get(fingerprint, ()) if a.kind == ActionKind.ROTATE), None)


def _no(basis: str) -> Horizon:
    return Horizon(False, None, basis)


def _latest(horizons: Iterable[Horizon]) -> Horizon | None:
    """The horizon that lasts longest (no end beats any date)."""
    best: Horizon | None = None
    for h in horizons:
        if best is None or (h.until is None or (best.until is not None and h.until > best.until)):
            best = h
    return best


def _ephemeral_certificate(certs: Sequence[CertInfo], now: datetime) -> Horizon:
    """Stock ``--certificate`` on an ephemeral signature: only while its certificate lasts."""
    live = [c for c in certs if not c.revoked and c.not_before <= now < c.not_after]
    if live:
        best = max(live, key=lambda c: c.not_after)
        return Horizon(True, best.not_after, f"its {_minutes(best)} certificate "
                       f"{short(best.serial)} expires {minute(best.not_after)}")
    if any(c.revoked for c in certs):
        return _no("its ephemeral certificate is revoked")
    ended = max(certs, key=lambda c: c.not_after)
    return _no(f"its {_minutes(ended)} certificate expired {minute(ended.not_after)}")


def _minutes(cert: CertInfo) -> str:
    minutes = round((cert.not_after - cert.not_before).total_seconds() / 60)
    return f"{minutes}-minute" if minutes < 120 else f"{minutes // 60}-hour"


def _certificate(signers: Sequence[KeyInfo], index: FleetIndex, now: datetime) -> Horizon:
    mine = index.certs_of(key for key in signers if key.state not in _UNTRUSTED)
    live = [c for c in mine if not c.revoked and c.not_before <= now < c.not_after]
    if live:
        best = max(live, key=lambda c: c.not_after)
        return Horizon(True, best.not_after, f"certificate {short(best.serial)} expires "
                       f"{day(best.not_after)}")
    if any(c.revoked for c in mine):
        return _no("its signers' certificates are revoked")
    ended = max((c.not_after for c in mine if c.not_after <= now), default=None)
    return _no(f"its certificate expired {day(ended)}" if ended else "no valid certificate")


def _key(signers: Sequence[KeyInfo], policy: ImageSetPolicy | None, index: FleetIndex,
         now: datetime) -> Horizon:
    horizons = []
    for key in signers:
        if key.state in _UNTRUSTED:
            continue
        if key.state == KeyState.RETIRING.value and key.retiring_at is not None:
            overlap = policy.overlap if policy is not None else None
            end = key.retiring_at + overlap if overlap is not None else None
            horizons.append(Horizon(True, end, f"key {short(key.fingerprint)} is retiring; its "
                                    "signature is dropped after the overlap"))
            continue
        rotate = index.rotation(key.fingerprint)
        if policy is not None and policy.strategy is Strategy.RESIGN and rotate is not None:
            end = rotate.not_before + policy.overlap
            horizons.append(Horizon(True, end, f"key {short(key.fingerprint)} rotates "
                                    f"{day(rotate.not_before)}; its signature is dropped "
                                    f"{policy.overlap.days} days later"))
        else:
            horizons.append(Horizon(True, None, f"key {short(key.fingerprint)} is kept"))
    best = _latest(horizons)
    if best is None or (best.until is not None and best.until <= now):
        return _no("no trusted key signed it")
    return best


def _pgp(signers: Sequence[KeyInfo], now: datetime) -> Horizon:
    """Stock ``verify`` with the keys the keyserver serves: each signer's key must be valid."""
    for key in signers:
        if key.pgp_revoked or key.state in (KeyState.COMPROMISED, KeyState.REVOKED):
            return _no(f"PGP key {short(key.fingerprint)} is revoked")
        if key.expires_at is not None and key.expires_at <= now:
            return _no(f"PGP key {short(key.fingerprint)} expired {day(key.expires_at)}")
    expiring = [k for k in signers if k.expires_at is not None]
    if not expiring:
        return Horizon(True, None, "stock verify with the keyserver's keys: they never expire")
    first = min(expiring, key=lambda k: (k.expires_at, k.fingerprint))
    assert first.expires_at is not None
    return Horizon(True, first.expires_at, f"stock verify with the keyserver's keys until "
                   f"{day(first.expires_at)} (PGP key {short(first.fingerprint)} expires)")


def _keeps(image: ImageState, signers: Sequence[KeyInfo], policy: ImageSetPolicy | None,
           index: FleetIndex) -> Action | None:
    """The earliest planned action that renews this image's verifiability.

    A new key for the set (prepare, provision) helps only where images are re-signed with it.
    """
    subjects = [image.path] + [key.fingerprint for key in signers] + [
        c.serial for c in index.certs_of(signers)]
    if policy is not None and policy.strategy is Strategy.RESIGN:
        subjects.append("set:" + policy.name)
    relevant = [a for s in subjects for a in index.actions.get(s, ()) if a.kind in _KEEPS]
    return min(relevant, key=Action.sort_key, default=None)


def _by_proven_time(signers: Sequence[KeyInfo], proven: Mapping[str, datetime | None],
                    index: FleetIndex, stock: Horizon) -> tuple[Horizon | None, str]:
    """This tool judging each timestamped signature at its proven time, and the certificate
    (serial) that then verifies; ``stock`` is the stock ``--certificate`` horizon."""
    stamped = [(key, proven[key.dsse_keyid]) for key in signers if key.dsse_keyid in proven]
    if not stamped:
        return None, ""
    horizons: list[tuple[Horizon, str]] = []
    for key, at in stamped:
        name = short(key.fingerprint)
        if at is None:  # verify then judges it as untimestamped: as stock tools do
            horizons.append((Horizon(stock.verifies, stock.until, f"the timestamps on key "
                                     f"{name}'s signature prove nothing; judged as untimestamped: "
                                     f"{stock.basis}"), ""))
            continue
        covering = [c for c in index.certs_of([key]) if c.not_before <= at < c.not_after]
        valid = [c for c in covering
                 if c.serial not in index.invalid_since or index.invalid_since[c.serial] > at]
        if not valid:
            why = ("a certificate of it was revoked as of "
                   f"{minute(min(index.invalid_since[c.serial] for c in covering))}"
                   if covering else "no certificate of it was valid then")
            horizons.append((_no(f"key {name}'s signature is proven at {minute(at)}, but {why}"),
                             ""))
            continue
        cert = max(valid, key=lambda c: (c.not_after, c.serial))
        stops = (f"stock tools stop {day(stock.until)}" if stock.verifies and stock.until
                 else "stock tools already stop" if not stock.verifies else "")
        basis = (f"key {name}'s signature is proven (RFC 3161) at {minute(at)}, while "
                 f"certificate {short(cert.serial)} (to {day(cert.not_after)}) was valid; "
                 f"verifies by proven time{'; ' + stops if stops else ''}")
        since = index.invalid_since.get(cert.serial)
        if key.state == KeyState.COMPROMISED and since is not None:
            basis += (f"; kept, not re-signed: proven before the key's compromise at "
                      f"{minute(since)}")
        horizons.append((Horizon(True, None, basis), cert.serial))
    best = _latest(h for h, _ in horizons if h.verifies)
    if best is None:
        return _no("; ".join(h.basis for h, _ in horizons)), ""
    return best, next(serial for h, serial in horizons if h is best)


def forecast(image: ImageState, policy: ImageSetPolicy | None, index: FleetIndex,
             now: datetime, *, logged: frozenset[str] = frozenset(),
             proven: Mapping[str, datetime | None] | None = None) -> Forecast:
    """One image's forecast.

    ``logged``: the DSSE key ids of its signatures whose transparency-log evidence the service
    checked when it signed (ephemeral signing); the image is judged by that evidence.
    ``proven``: DSSE key id -> the proven (RFC 3161) signing time of its signatures in the image
    (None: their tokens prove nothing), for the signers whose signatures carry tokens.
    """
    signers = index.signers(image)
    name = policy.name if policy is not None else ""
    evidence = sorted(image.signers & logged)
    identity = policy.identity if policy is not None and evidence else ""
    ids = tuple(key.fingerprint for key in signers) + tuple(evidence)
    keeps = _keeps(image, signers, policy, index)
    if image.status != ImageStatus.PRESENT:
        why = ("its content no longer matches its signatures"
               if image.status == ImageStatus.TAMPERED else f"it is {image.status}")
        return Forecast(image.path, name, image.status, ids, _no(why), _no(why), _no(why), None,
                        tuple(evidence), identity, _no(why) if proven else None)
    if signers and all(k.pgp for k in signers):
        certificate = _pgp(signers, now)
        key = _key(signers, policy, index, now)
        if not certificate.verifies or (certificate.until is not None and (
                key.until is None or key.until > certificate.until)):
            key = certificate  # a PGP key in a local keyring expires and is revoked the same
    else:
        certificate = _certificate(signers, index, now)
        key = _key(signers, policy, index, now)
    ephemeral = [index.ephemeral[k] for k in evidence if k in index.ephemeral]
    if ephemeral and not certificate.verifies:
        certificate = _ephemeral_certificate(ephemeral, now)
    if evidence and not key.verifies:
        key = _no("signed by an ephemeral key: it was discarded after signing, no public key "
                  "is published")
    if evidence:
        who = f" as {identity}" if identity else ""
        tool = Horizon(True, None, f"transparency-log evidence proves it was signed{who} while "
                       "its certificate was valid")
    elif certificate.verifies and keeps is not None:
        tool = Horizon(True, None, f"renewed by the planned {keeps.kind} "
                       f"(from {day(keeps.not_before)}) for as long as the service runs it")
    else:
        tool = certificate
    by_time, serial = _by_proven_time(signers, proven or {}, index, certificate)
    return Forecast(image.path, name, image.status, ids, certificate, key, tool, keeps,
                    tuple(evidence), identity, by_time, serial)
