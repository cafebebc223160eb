"""The report's "verifies now" claims, checked by the one verdict (:func:`lifecycle.verify.verify`).

The forecast is computed from the model (keys, certificates, planned actions) without reading
images. Before a report says an image verifies now, each such claim is confirmed by verifying the
image with the public keys of the store keys that signed it, and an image judged by its log
evidence (ephemeral signing) with the log's key, its set's identity and the CA root, as
``verify --log-key --identity`` does; an image that fails is shown as not verifying, with the
verdict's reason. Reading every image costs one pass over its data, so a
caller with a very large fleet may skip the check (``report --no-verify-images``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import Engine

from lifecycle.errors import LifecycleError, VerificationError
from lifecycle.integrity.keys import VerifierKey
from lifecycle.model.fleet import CertInfo, KeyInfo
from lifecycle.model.status import ImageStatus
from lifecycle.reports.forecast import Forecast, Horizon
from lifecycle.store.key_service import KeyService
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, verify


@dataclass(frozen=True)
class LogMaterial:
    """What a logged signature is checked with: the log's verifier key, the CA root (PEM) and
    the newest CRLs (DER)."""

    verifier_key: str
    root: str
    crls: tuple[bytes, ...]


def _claims(forecast: Forecast) -> bool:
    return forecast.status == ImageStatus.PRESENT and any(
        h.verifies for h in (forecast.certificate, forecast.key, forecast.tool))


def _keys(signers: Sequence[str], certificates: Mapping[str, Sequence[CertInfo]],
          pems: Mapping[str, str]) -> tuple[VerifierKey, ...]:
    """One verifier per signing store key, from any of its certificates (same key in each)."""
    out = []
    for fingerprint in signers:
        cert = next((c for c in certificates.get(fingerprint, ()) if c.serial in pems), None)
        if cert is not None:
            public = x509.load_pem_x509_certificate(pems[cert.serial].encode()).public_key()
            out.append(VerifierKey(f"key {fingerprint[:12]}", public))  # type: ignore[arg-type]
    return tuple(out)


def _trust(forecast: Forecast, certificates: Mapping[str, Sequence[CertInfo]],
           pems: Mapping[str, str], log: LogMaterial | None, now: datetime) -> TrustMaterial | None:
    if not _claims(forecast):
        return None
    if forecast.logged and log is not None:
        root = x509.load_pem_x509_certificate(log.root.encode())
        return TrustMaterial(log_keys=(log.verifier_key,), roots=(root,), crls=log.crls,
                             identity=IdentityPolicy(identities=(forecast.identity,)), at=now)
    keys = _keys(forecast.signers, certificates, pems)
    return TrustMaterial(keys=keys, at=now) if keys else None


def confirm_now(forecasts: Iterable[Forecast], certificates: Mapping[str, Sequence[CertInfo]],
                pems: Mapping[str, str], now: datetime,
                log: LogMaterial | None = None, pgp_keys: Mapping[str, bytes] | None = None
                ) -> tuple[Forecast, ...]:
    """The forecasts, with every "verifies now" claim that the verdict refutes turned into no.

    ``pgp_keys`` (fingerprint -> armored public key, as published) confirm PGP-signed images."""
    out = []
    for forecast in forecasts:
        trust = _trust(forecast, certificates, pems, log, now)
        armored = b"".join((pgp_keys or {}).get(f, b"") for f in forecast.signers) \
            if _claims(forecast) else b""
        if armored:
            trust = trust._replace(pgp_keyring=armored) if trust is not None else \
                TrustMaterial(pgp_keyring=armored, at=now)
        if trust is not None:
            try:
                verify(forecast.path, trust)
            except VerificationError as exc:
                forecast = _refuted(forecast, f"verification fails now: {exc.reason}")
            except LifecycleError as exc:  # unreadable or vanished since the scan
                forecast = _refuted(forecast, f"cannot be verified now: {exc.message}")
        out.append(forecast)
    return tuple(out)


def _refuted(forecast: Forecast, why: str) -> Forecast:
    no = Horizon(False, None, why)
    return replace(forecast, certificate=no, key=no, tool=no)


def pgp_public_keys(engine: Engine, key_directory: Path, keys: Iterable[KeyInfo]
                    ) -> dict[str, bytes]:
    """Fingerprint -> armored public key (what is published) of every PGP store key."""
    service = KeyService(engine, key_directory)
    return {key.fingerprint: service.public_bytes(key.fingerprint) for key in keys if key.pgp}
