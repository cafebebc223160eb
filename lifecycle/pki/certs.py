"""Reading certificates from user files and checking what a certificate may be used for."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from lifecycle.errors import CertificateError


def load_certificates(data: bytes, *, path: Path | str) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, or the one in a DER file; never an empty list."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateError("not a valid PEM or DER certificate", path=path) from exc
    if not certs:
        raise CertificateError("no certificate found", path=path)
    return certs


def load_certificate(data: bytes, *, path: Path | str) -> x509.Certificate:
    certs = load_certificates(data, path=path)
    if len(certs) != 1:
        raise CertificateError(f"expected one certificate, found {len(certs)}", path=path)
    return certs[0]


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def require_code_signing(cert: x509.Certificate, *, path: Path | str | None) -> None:
    """Refuse a certificate that may not sign code: no codeSigning EKU or no digitalSignature."""
    subject = cert.subject.rfc4514_string()
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise CertificateError(f"certificate {subject} is not a code-signing certificate "
                               "(extended key usage codeSigning missing)", path=path)
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise CertificateError(f"certificate {subject} does not allow digitalSignature",
                                   path=path)
    except x509.ExtensionNotFound:
        pass
