"""Was this code-signing certificate trustworthy at time T? Path validation, pyhanko-certvalidator.

The time is an input, never "now" implicitly: long-term verification asks about the moment a
signature was made. Revocation evidence comes from CRL files and OCSP responses (files, or fetched
live from the certificate's AIA OCSP URL and then judged like a file). Revocation here is final
(no holds), so evidence issued after T is accepted as evidence about T ("retroactive revinfo"),
but evidence whose nextUpdate is before T is stale. On top of the library's check, a CRL entry's
invalidityDate moves the end of trust back to the moment the key was compromised.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as pv_errors

from lifecycle.clock import utc_now
from lifecycle.errors import CertificateError, CertificateValidationError
from lifecycle.pki.certs import require_code_signing
from lifecycle.pki.crl import load_crl
from lifecycle.pki.keys import PublicKey
from lifecycle.pki.revocation import REVOCATION_MODES, RevocationMode

log = logging.getLogger(__name__)
MAX_OCSP_RESPONSE = 1024 * 1024
"""Bytes read from a responder: an answer for one certificate is a few KiB."""


@dataclass(frozen=True)
class ValidationResult:
    """A path that validated at ``at``; ``public_key`` is what signatures are checked against."""

    leaf: x509.Certificate
    public_key: PublicKey
    path: tuple[x509.Certificate, ...]
    at: datetime
    warnings: tuple[str, ...] = ()


def signed_before_compromise(signed_at: datetime, compromised_at: datetime | None) -> bool:
    """A signature made at ``signed_at`` survives a compromise at ``compromised_at`` iff earlier."""
    return compromised_at is None or signed_at < compromised_at


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            return str(desc.access_location.value)
    return None


CERT_ID_HASHES: tuple[hashes.HashAlgorithm, ...] = (
    hashes.SHA1(),  # noqa: S303 - the CertID stock --ocsp-verify and RFC 5019 clients send
    hashes.SHA256(),
)
"""CertID hashes, in the order they are asked: SHA-1 first, SHA-256 when a responder refuses it."""


def fetch_ocsp_response(
    cert: x509.Certificate, issuer: x509.Certificate, *, timeout: float = 10.0
) -> bytes:
    """POST an OCSP request for ``cert`` to its first AIA OCSP URL, as stock
    ``--ocsp-verify`` does; the raw DER answer. A responder that refuses the SHA-1 CertID
    (an unsuccessful responseStatus) is asked again with SHA-256."""
    url = _ocsp_url(cert)
    if url is None:
        raise CertificateValidationError(
            f"certificate {cert.subject.rfc4514_string()} names no OCSP responder")
    if not url.startswith(("http://", "https://")):
        raise CertificateValidationError(f"OCSP URL {url} is not http(s)")
    answer = b""
    for algorithm in CERT_ID_HASHES:
        answer = _post_ocsp(url, cert, issuer, algorithm, timeout)
        try:
            status = ocsp.load_der_ocsp_response(answer).response_status
        except ValueError:
            return answer  # not OCSP at all: path validation reports it as unusable
        if status is ocsp.OCSPResponseStatus.SUCCESSFUL:
            return answer
    return answer


def _post_ocsp(url: str, cert: x509.Certificate, issuer: x509.Certificate,
               algorithm: hashes.HashAlgorithm, timeout: float) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
    http = urllib.request.Request(  # noqa: S310 - the caller checked the scheme
        url, data=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request",
                 "Accept": "application/ocsp-response"}, method="POST")
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:  # noqa: S310
            data = bytes(answer.read(MAX_OCSP_RESPONSE + 1))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CertificateValidationError(f"OCSP responder {url} did not answer: {exc}") from exc
    if len(data) > MAX_OCSP_RESPONSE:
        raise CertificateValidationError(
            f"OCSP responder {url} sent more than {MAX_OCSP_RESPONSE} bytes")
    return data


def _fetch_all(
    chain: Sequence[x509.Certificate], pool: Sequence[x509.Certificate], timeout: float
) -> tuple[list[bytes], list[str]]:
    """Live OCSP answers for every certificate in ``chain`` that names a responder."""
    answers: list[bytes] = []
    problems: list[str] = []
    for cert in chain:
        issuer = next((c for c in pool if c.subject == cert.issuer and c is not cert), None)
        if issuer is None or _ocsp_url(cert) is None:
            continue
        try:
            answers.append(fetch_ocsp_response(cert, issuer, timeout=timeout))
        except CertificateValidationError as exc:
            problems.append(str(exc))
    return answers, problems


def _describe(exc: Exception, leaf: x509.Certificate, at: datetime) -> str:
    subject = leaf.subject.rfc4514_string()
    when = at.isoformat()
    if isinstance(exc, pv_errors.RevokedError):
        return f"certificate {subject}: revoked at or before {when}: {exc}"
    if isinstance(exc, pv_errors.ExpiredError):
        return f"certificate {subject}: a certificate in the path had expired at {when}: {exc}"
    if isinstance(exc, pv_errors.NotYetValidError):
        return f"certificate {subject}: a certificate in the path was not yet valid at {when}"
    if isinstance(exc, pv_errors.StaleRevinfoError):
        return f"certificate {subject}: revocation data is stale for {when}: {exc}"
    if isinstance(exc, pv_errors.InsufficientRevinfoError):
        return f"certificate {subject}: no usable revocation data for {when}: {exc}"
    if isinstance(exc, pv_errors.PathBuildingError):
        return f"certificate {subject}: no chain to a trusted root: {exc}"
    if isinstance(exc, pv_errors.InvalidCertificateError):
        return f"certificate {subject}: not acceptable: {exc}"
    return f"certificate {subject}: path validation failed at {when}: {exc}"


def _compromise_check(
    leaf: x509.Certificate, path: Sequence[x509.Certificate], crls: Sequence[bytes], at: datetime
) -> None:
    """Reject when a CRL from the leaf's issuer dates the key's compromise at or before ``at``."""
    issuer = path[1] if len(path) > 1 else leaf
    for index, data in enumerate(crls):
        crl = load_crl(data, path=f"CRL #{index + 1}")
        if crl.issuer != issuer.subject or not crl.is_signature_valid(
                issuer.public_key()):  # type: ignore[arg-type]
            continue
        entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
        if entry is None:
            continue
        try:
            since = entry.extensions.get_extension_for_class(
                x509.InvalidityDate).value.invalidity_date_utc
        except x509.ExtensionNotFound:
            continue
        if not signed_before_compromise(at, since):
            raise CertificateValidationError(
                f"certificate {leaf.subject.rfc4514_string()}: key compromised since "
                f"{since.isoformat()} (CRL invalidityDate), at or before {at.isoformat()}",
                hint="only signatures proven to be older than the compromise are valid")


def validate_signing_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] = (),
    *,
    at: datetime | None = None,
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    fetch_ocsp: bool = False,
    revocation_mode: RevocationMode = "hard-fail",
    timeout: float = 10.0,
) -> ValidationResult:
    """Validate ``leaf`` for code signing at ``at`` (default now) against ``roots``.

    ``crls`` and ``ocsp_responses`` are DER or PEM bytes. ``revocation_mode``: ``soft-fail``
    ignores missing or unusable revocation data, ``hard-fail`` fails when a certificate names a
    CRL/OCSP location and no usable data for it was given, ``require`` demands data for every
    certificate. Raises :class:`CertificateError` for a non-code-signing leaf or bad input and
    :class:`CertificateValidationError` when the path does not validate.
    """
    when = at if at is not None else utc_now()
    if when.utcoffset() is None:
        raise CertificateError("validation time must include a timezone (e.g. 2029-01-01T00:00Z)")
    if revocation_mode not in REVOCATION_MODES:
        raise CertificateError(f"unknown revocation mode {revocation_mode!r}",
                               hint=f"use one of: {', '.join(REVOCATION_MODES)}")
    if not roots:
        raise CertificateError("no trusted root certificate given",
                               hint="pass the CA root with --certificate-roots")
    require_code_signing(leaf, path=None)
    chain, warnings = _validate_path(leaf, intermediates, roots, when, crls, ocsp_responses,
                                     fetch_ocsp, revocation_mode, timeout, "code_signing")
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                      | ed25519.Ed25519PublicKey):
        raise CertificateError(f"certificate {leaf.subject.rfc4514_string()}: its "
                               f"{type(public_key).__name__} cannot verify DSSE signatures")
    return ValidationResult(leaf, public_key, chain, when, warnings)


def _validate_path(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate], when: datetime, crls: Sequence[bytes],
    ocsp_responses: Sequence[bytes], fetch_ocsp: bool, revocation_mode: RevocationMode,
    timeout: float, purpose: str,
) -> tuple[tuple[x509.Certificate, ...], tuple[str, ...]]:
    """The validated path (leaf first) at ``when`` for EKU ``purpose``, and soft-fail warnings."""
    crl_list = [load_crl(c, path=f"CRL #{i + 1}").public_bytes(serialization.Encoding.DER)
                for i, c in enumerate(crls)]
    responses = list(ocsp_responses)
    warnings: list[str] = []
    if fetch_ocsp:
        fetched, problems = _fetch_all([leaf, *intermediates], [*intermediates, *roots], timeout)
        responses.extend(fetched)
        warnings.extend(problems)
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in roots],
        other_certs=[_asn1(c) for c in intermediates],
        moment=when,
        crls=crl_list,
        ocsps=responses,
        revocation_mode=revocation_mode,
        retroactive_revinfo=True,
    )
    validator = CertificateValidator(_asn1(leaf), [_asn1(c) for c in intermediates], context)
    try:
        path = asyncio.run(validator.async_validate_usage(  # type: ignore[no-untyped-call]
            {"digital_signature"}, extended_key_usage={purpose}))
    except (pv_errors.ValidationError, pv_errors.PathError) as exc:
        raise CertificateValidationError(_describe(exc, leaf, when)) from exc
    chain = tuple(
        x509.load_der_x509_certificate(c.dump()) for c in reversed(list(path.iter_certs(True))))
    _compromise_check(leaf, chain, crl_list, when)
    warnings.extend(str(e) for e in context.soft_fail_exceptions)
    for warning in warnings:
        log.warning("%s", warning)
    return chain, tuple(warnings)


def validate_timestamping_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    crls: Sequence[bytes] = (),
    revocation_mode: RevocationMode = "hard-fail",
) -> tuple[x509.Certificate, ...]:
    """The path of a TSA certificate (EKU timeStamping) valid at ``at`` (a token's genTime),
    with its own revocation evidence; raises :class:`CertificateValidationError`."""
    if not roots:
        raise CertificateError("no trusted TSA root certificate given")
    chain, _ = _validate_path(leaf, intermediates, roots, at, crls, (), False, revocation_mode,
                              10.0, "time_stamping")
    return chain
