"""Full CRLs: one per issuing CA, numbered, with nextUpdate, reason and invalidity date per entry.

The invalidity date is what point-in-time validation uses for "compromised since": a signature
made before it stays valid even though the certificate was revoked later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from lifecycle.errors import CertificateError
from lifecycle.pki.ca import signing_hash
from lifecycle.pki.keys import PrivateKey

# Revocation here is final: no certificateHold / removeFromCRL. Point-in-time validation relies on
# that when it reads a CRL issued after the signing time as evidence about the signing time.
_FINAL = tuple(
    r for r in x509.ReasonFlags
    if r not in (x509.ReasonFlags.remove_from_crl, x509.ReasonFlags.certificate_hold)
)
REASONS = tuple(r.value for r in _FINAL)


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified
    invalidity_date: datetime | None = None


def parse_reason(text: str) -> x509.ReasonFlags:
    """Accept RFC 5280 names (``keyCompromise``) case-insensitively, or snake_case."""
    wanted = text.replace("_", "").replace("-", "").lower()
    for reason in _FINAL:
        if reason.value.lower() == wanted:
            return reason
    raise CertificateError(f"unknown revocation reason {text!r}",
                           hint=f"use one of: {', '.join(REASONS)}")


def _entry(item: RevokedEntry) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(item.serial).revocation_date(
        item.revoked_at)
    if item.reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(item.reason), critical=False)
    if item.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(item.invalidity_date), critical=False)
    return builder.build()


def build_crl(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    entries: Iterable[RevokedEntry],
    *,
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    if next_update <= this_update:
        raise CertificateError("CRL nextUpdate must be after thisUpdate")
    # Hand the entries over in one list: add_revoked_certificate copies the list each call (O(n^2)).
    revoked = [_entry(item) for item in entries]
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    return builder.sign(issuer_key, signing_hash(issuer_key))


def load_crl(data: bytes, *, path: str) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CertificateError("not a valid PEM or DER CRL", path=path) from exc


def invalidity_of(crl: x509.CertificateRevocationList, serial: int) -> datetime | None:
    """When the key behind ``serial`` became unsafe: invalidityDate, else revocationDate."""
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    if entry is None:
        return None
    try:
        ext = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
        return ext.invalidity_date_utc
    except x509.ExtensionNotFound:
        return entry.revocation_date_utc
