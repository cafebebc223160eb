"""What the log accepts from a remote signer: a real signature by a key its signing CA certified.

An entry appended over HTTP must carry a certificate issued by one of the log's signing CAs
(the store's ephemeral CA), valid at the time the log integrates it and allowed to sign code,
and a signature by that certificate's key over the payload whose digest the entry records.
The payload travels with the submission for this check only (it is not part of the leaf), so
every key type verifies the same way, Ed25519 included. Anything else is refused before it
reaches the database: the log holds no junk, and a flood of big fake entries is impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lifecycle.errors import LifecycleError, LogError
from lifecycle.integrity.dsse import verify_pae
from lifecycle.pki.certs import load_certificate, require_code_signing
from lifecycle.tlog.entry import Submission, digest_payload

MAX_CERTIFICATE = 16 * 1024
MAX_SIGNATURE = 1024
MAX_PAYLOAD = 512 * 1024
WHAT = "the submitted certificate"


def admit(submission: Submission, issuers: Sequence[x509.Certificate], when: datetime) -> None:
    """Raise :class:`LogError` (saying why) unless ``submission`` may be logged at ``when``."""
    if len(submission.certificate) > MAX_CERTIFICATE or len(submission.signature) > MAX_SIGNATURE:
        raise LogError(f"the certificate (at most {MAX_CERTIFICATE} bytes) or signature (at most "
                       f"{MAX_SIGNATURE} bytes) is too long")
    payload = submission.payload
    if payload is None or len(payload) > MAX_PAYLOAD:
        raise LogError(f"the submission needs its signed payload (at most {MAX_PAYLOAD} bytes)",
                       hint="send \"payload\": base64 of the DSSE PAE bytes that were signed")
    if digest_payload(payload, submission.digest_algorithm) != submission.payload_digest:
        raise LogError("the payload does not have the submitted payload digest")
    try:
        cert = load_certificate(submission.certificate, path=WHAT)
        require_code_signing(cert, path=WHAT)
    except LifecycleError as exc:
        raise LogError(exc.message) from None
    _check_issued(cert, issuers, when)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise LogError(f"{WHAT} has an unsupported key type")
    if not verify_pae(key, submission.signature, payload):
        raise LogError("the signature does not verify with the certificate's key")


def _check_issued(cert: x509.Certificate, issuers: Sequence[x509.Certificate],
                  when: datetime) -> None:
    if not issuers:
        raise LogError("this log has no signing CA to check certificates against",
                       hint="run 'sif-lifecycle ca init' (it creates the ephemeral CA)")
    for issuer in issuers:
        if issuer.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        for name, c in (("certificate", cert), ("signing CA certificate", issuer)):
            if not c.not_valid_before_utc <= when <= c.not_valid_after_utc:
                raise LogError(f"the {name} is not valid at {when.isoformat()} "
                               f"({c.not_valid_before_utc.isoformat()} to "
                               f"{c.not_valid_after_utc.isoformat()})")
        return
    raise LogError(f"{WHAT} ({cert.subject.rfc4514_string()}) was not issued by the log's "
                   "signing CA")
