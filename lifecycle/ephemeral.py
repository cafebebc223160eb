"""Ephemeral signing: a key that lives only in memory for one signing, vouched for by the log.

The sequence (``sign_ephemeral``): make a key in memory; have the dedicated ephemeral CA issue a
certificate of minutes naming the signer's identity; sign the group's DSSE payload; append
(payload digest, signature, certificate, image id) to the transparency log and check the
evidence it returns against the log's key; put certificate chain and evidence into the
signature's v1.1 extension; write the envelope into the image in ONE crash-safe write; drop the
key. The extension is not covered by the signature, which is what lets the evidence (which
needs the signature) travel with it; verifiers check every piece of it on its own.

If the log append succeeds and the image write then fails (or the process is killed), the log
holds an entry no image carries: harmless (the signature is useless without the image), and
recorded: the signing is journalled in the store (``tlog_intent``) before the append, each entry
as soon as it is appended, and completed after the write, so ``tlog check`` lists the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509

from lifecycle.clock import utc_now
from lifecycle.config import IdentityKind, identity_kind
from lifecycle.errors import LifecycleError, SigningError
from lifecycle.integrity import dsse
from lifecycle.integrity.digest import Progress
from lifecycle.integrity.sign import Attest, DsseSigner, SignedGroup, SignOptions, sign_image
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.keys import KeyAlgorithm, PrivateKey, generate_private_key
from lifecycle.sif.image import SifImage
from lifecycle.store.ca_service import EPHEMERAL, CaService
from lifecycle.store.tlog import IntentJournal
from lifecycle.tlog.client import LogClient
from lifecycle.tlog.entry import Submission, digest_payload
from lifecycle.tlog.evidence import Evidence, VerifiedEntry
from lifecycle.tlog.note import NoteVerifier
from lifecycle.verification.extension import EPHEMERAL_KIND, build_extension
from lifecycle.verification.longterm import image_id

DEFAULT_LIFETIME = timedelta(minutes=10)
ALGORITHMS = (KeyAlgorithm.P256, KeyAlgorithm.ED25519)


def identity_name(identity: str) -> x509.GeneralName:
    """An email address becomes an rfc822Name, anything with a scheme (``https://``) a URI."""
    try:
        kind = identity_kind(identity)
    except ValueError as exc:
        raise LifecycleError(str(exc), hint="e.g. --identity builder@example.org or "
                             "--identity https://ci.example.org/pipelines/42") from None
    if kind is IdentityKind.URI:
        return x509.UniformResourceIdentifier(identity)
    return x509.RFC822Name(identity)


@dataclass
class EphemeralResult:
    signed: list[SignedGroup]
    certificate: x509.Certificate
    identity: str
    entries: list[VerifiedEntry] = field(default_factory=list)
    """One log entry per signed group, verified against the log key."""


def logging_attest(
    log: LogClient,
    chain: Sequence[x509.Certificate],
    ident: str,
    verifiers: Sequence[NoteVerifier],
    kind: str,
    path: str,
    logged: list[VerifiedEntry],
    on_logged: Callable[[Evidence], None] | None = None,
) -> Attest:
    """An :data:`Attest` hook that logs each fresh signature and returns its evidence extension.

    Works for any certificate-based signature (``chain[0]`` certifies the signing key): the
    ephemeral strategy uses it with ``EPHEMERAL_KIND``, long-lived certified keys with
    ``EVIDENCE_KIND``. The returned evidence is verified against ``verifiers`` and must name
    this signature and fall within the certificate's validity, or signing stops before any
    write. Verified entries are appended to ``logged``.
    """
    cert = chain[0]
    cert_pem = certificate_pem(cert)

    def attest(message: bytes, signature: dsse.Signature) -> dsse.Extension:
        evidence = log.submit(Submission(digest_payload(message), signature.sig, cert_pem, ident,
                                         payload=message))
        if on_logged is not None:  # first, so a failure below still leaves the entry recorded
            on_logged(evidence)
        verified = evidence.verify(verifiers)
        sub = verified.entry.submission
        if (sub.signature, sub.certificate, sub.image_id) != (signature.sig, cert_pem, ident):
            raise SigningError("the log returned evidence for another entry", path=path)
        when = verified.entry.integrated_time
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise SigningError(
                f"the log integrated the entry at {when.isoformat()}, outside the "
                f"certificate's validity; the signature would never verify", path=path,
                hint="check the clocks of the log and the CA")
        logged.append(verified)
        return build_extension(kind, chain, evidence)

    return attest


def sign_ephemeral(
    path: str,
    identity: str,
    ca: CaService,
    log: LogClient,
    *,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    algorithm: KeyAlgorithm = KeyAlgorithm.P256,
    log_keys: Sequence[NoteVerifier] = (),
    options: SignOptions | None = None,
    progress: Progress | None = None,
    key_factory: Callable[[KeyAlgorithm], PrivateKey] = generate_private_key,
) -> EphemeralResult:
    """Sign ``path`` with a fresh in-memory key and log it; see the module docstring.

    ``log_keys`` pins the log's verifier keys (default: whatever key the log says it has, so
    a log that answers with evidence nobody can verify is refused at once, not years later).
    ``now`` is the certificate's start (default: the CA's clock).
    """
    if algorithm not in ALGORITHMS:
        raise LifecycleError(f"ephemeral keys are {' or '.join(ALGORITHMS)}, not {algorithm}")
    name = identity_name(identity)
    if not ca.has_role(EPHEMERAL):
        ca.init_ephemeral()
    verifiers = list(log_keys) or [NoteVerifier.from_verifier_key(log.verifier_key())]
    with SifImage.open(path) as image:
        ident = image_id(image)
    key = key_factory(algorithm)
    issued = ca.issue_ephemeral(key.public_key(), name, lifetime, now)
    chain = [issued.certificate, ca.certificate(EPHEMERAL)]
    result = EphemeralResult([], issued.certificate, identity)

    journal = IntentJournal(ca.engine)
    intent = journal.begin(path, ident, issued.certificate.not_valid_before_utc)
    attest = logging_attest(log, chain, ident, verifiers, EPHEMERAL_KIND, path, result.entries,
                            lambda ev: journal.logged(intent, verifiers[0].name,
                                                      ev.inclusion_proof.index))
    signer = DsseSigner((key,), attest=attest)
    try:
        result.signed = sign_image(path, signer, options or SignOptions(), progress)
        journal.complete(intent, utc_now())
    finally:
        # The only references to the key: dropping them is destroying it (never serialized).
        del signer, key
    return result
