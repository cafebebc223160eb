"""OCSP responses, pre-signed and cached per certificate (RFC 5019), for one or more CAs.

Each CA answers for the certificates it issued, signed with its own key and no certificate
embedded (what stock ``singularity``/``apptainer verify --ocsp-verify`` accepts), or, as an
option, by a delegated responder whose certificate is embedded (RFC 6960 4.2.2.2; stock clients
reject that). The request's CertID (issuerNameHash, issuerKeyHash) picks the CA, so one URL
serves the root (answering for the intermediates) and the intermediate (for the leaves).

The responder never signs on the hot path for known certificates: a response is made once per
certificate status and reused until it is half-way to its nextUpdate or the status changes
(``invalidate``). Responses carry no nonce, as RFC 5019 allows, which is what makes them cacheable.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from lifecycle.pki.ca import signing_hash
from lifecycle.pki.keys import PrivateKey


@dataclass(frozen=True)
class CertStatus:
    """What the CA knows about one serial; ``revoked_at`` is None while the certificate is good."""

    serial: int
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


StatusLookup = Callable[[x509.Certificate, int], CertStatus | None]
"""(issuing CA certificate, serial) -> what that CA says about the serial; None: never issued."""
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class OcspSigner:
    """The CA that issued the certificates and the key that signs its responses: the CA's own
    (``responder`` None) or a delegated responder's, whose certificate ``responder`` is then
    embedded. ``validity`` is nextUpdate - thisUpdate, capped at the CA's expiry."""

    issuer: x509.Certificate
    key: PrivateKey
    responder: x509.Certificate | None = None
    validity: timedelta = timedelta(hours=12)

    def issuer_hashes(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        """(issuerNameHash, issuerKeyHash) of our CA under the request's hash algorithm."""
        name_der = self.issuer.subject.public_bytes()
        spki = self.issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # issuerKeyHash covers the subjectPublicKey BIT STRING value, without its unused-bits byte
        bit_string = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
        return (hashlib.new(algorithm.name, name_der).digest(),
                hashlib.new(algorithm.name, bit_string).digest())

    def sign(
        self, status: CertStatus | None, serial: int, algorithm: hashes.HashAlgorithm, now: datetime
    ) -> bytes:
        name_hash, key_hash = self.issuer_hashes(algorithm)
        if status is None:
            cert_status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif status.revoked_at is None:
            cert_status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        else:
            cert_status, revoked_at = ocsp.OCSPCertStatus.REVOKED, status.revoked_at
            reason = status.reason
        next_update = now + self.validity
        if now < self.issuer.not_valid_after_utc < next_update:
            next_update = self.issuer.not_valid_after_utc  # as the CRL: never past the CA's end
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(name_hash, key_hash, serial, algorithm, cert_status, now,
                                  next_update, revoked_at, reason)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder or self.issuer)
        )
        if self.responder is not None:
            builder = builder.certificates([self.responder])
        response = builder.sign(self.key, signing_hash(self.key))
        return response.public_bytes(serialization.Encoding.DER)


def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


def signer_for(signers: Sequence[OcspSigner], cert: x509.Certificate) -> OcspSigner | None:
    """The signer of the CA that issued ``cert`` (by name and key), or None."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        wanted = aki.key_identifier
    except x509.ExtensionNotFound:
        wanted = None
    for signer in signers:
        if signer.issuer.subject != cert.issuer:
            continue
        ski = x509.SubjectKeyIdentifier.from_public_key(
            signer.issuer.public_key()).digest
        if wanted is None or wanted == ski:
            return signer
    return None


class OcspResponder:
    """Answers DER OCSP requests from a cache of pre-signed responses; thread-safe.

    ``signers``: one per CA that answers (the CertID's issuer hashes pick it)."""

    def __init__(self, signers: Sequence[OcspSigner], lookup: StatusLookup) -> None:
        self._signers = tuple(signers)
        self._lookup = lookup
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str, bytes], tuple[bytes, datetime]] = {}

    def invalidate(self, serial: int | None = None) -> None:
        """Drop cached responses for ``serial`` (all when None): call after a status change."""
        with self._lock:
            if serial is None:
                self._cache.clear()
            else:
                for key in [k for k in self._cache if k[0] == serial]:
                    del self._cache[key]

    def respond(self, request_der: bytes, now: datetime) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
        except (ValueError, NotImplementedError, x509.UnsupportedGeneralNameType):
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if algorithm.name not in _HASHES:
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        asked = (request.issuer_name_hash, request.issuer_key_hash)
        signer = next((s for s in self._signers if s.issuer_hashes(algorithm) == asked), None)
        if signer is None:
            return error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return self.response_for(signer, serial, algorithm, now)

    def response_for(self, signer: OcspSigner, serial: int, algorithm: hashes.HashAlgorithm,
                     now: datetime) -> bytes:
        key = (serial, algorithm.name, signer.issuer.fingerprint(hashes.SHA256()))
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        status = self._lookup(signer.issuer, serial)
        der = signer.sign(status, serial, _HASHES[algorithm.name](), now)
        if status is not None:  # unknown serials are not cached: a flood must not grow memory
            with self._lock:
                self._cache[key] = (der, now + signer.validity / 2)
        return der
