"""Verify signatures that carry log evidence, years later and with no network.

For each DSSE signature whose v1.1 extension carries evidence (see :mod:`.extension`):

1. the log evidence verifies against a pinned log key: signed checkpoint, inclusion proof of the
   entry under it, and the signed timestamp of the entry's integrated time;
2. the entry is *this* signature: same signature bytes, digest of the signed PAE, certificate
   and image id;
3. the signature verifies with the certificate's key;
4. the certificate chain validated at the logged time (not now) against the trusted roots,
   with the revocation evidence given (a revocation after the logged time does not matter, a
   compromise dated before it does);
5. the certificate names an accepted identity (SAN) and issuer;
6. with a checkpoint store, the checkpoint is consistent with the newest one remembered.

A signature that passes yields its certificate's public key, which the ordinary verification
(:func:`lifecycle.integrity.verify.verify_image`) then uses to check the image data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from lifecycle.errors import LifecycleError, VerificationError
from lifecycle.integrity import dsse
from lifecycle.integrity.envelopes import dsse_envelopes
from lifecycle.integrity.keys import KeySet, VerifierKey
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.keys import PublicKey
from lifecycle.pki.revocation import RevocationMode
from lifecycle.pki.validate import validate_signing_certificate
from lifecycle.sif.image import SifImage
from lifecycle.tlog.client import LogClient
from lifecycle.tlog.entry import digest_payload
from lifecycle.tlog.note import NoteVerifier
from lifecycle.verification.checkpoints import CheckpointStore
from lifecycle.verification.extension import SignatureEvidence, parse_extension
from lifecycle.verification.identity import IdentityPolicy, requires_identity


@dataclass(frozen=True)
class LongTermTrust:
    """What the verifier trusts and holds: no network is used unless ``log`` is given."""

    roots: tuple[x509.Certificate, ...]
    log_keys: tuple[NoteVerifier, ...]
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    crls: tuple[bytes, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()
    revocation_mode: RevocationMode = "hard-fail"
    checkpoints: CheckpointStore | None = None
    log: LogClient | None = None


@dataclass(frozen=True)
class LongTermResult:
    """The long-term check of one signature inside one signature object."""

    object_id: int
    keyid: str
    kind: str
    ok: bool = False
    error: str = ""
    identity: str = ""
    issuer: str = ""
    serial: str = ""
    logged_at: datetime | None = None
    log_origin: str = ""
    log_index: int | None = None
    checkpoint_size: int | None = None
    consistency: str = ""
    public_key: PublicKey | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id, "keyid": self.keyid, "kind": self.kind, "ok": self.ok,
            "error": self.error, "identity": self.identity, "issuer": self.issuer,
            "serial": self.serial,
            "logged_at": self.logged_at.isoformat() if self.logged_at else None,
            "log_origin": self.log_origin, "log_index": self.log_index,
            "checkpoint_size": self.checkpoint_size, "consistency": self.consistency,
        }


@dataclass
class LongTermReport:
    results: list[LongTermResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def keys(self) -> KeySet:
        """The public keys of the signatures that passed, for the image data check."""
        out = KeySet()
        for r in self.results:
            if r.ok and r.public_key is not None:
                label = f"{r.identity or r.serial} (log {r.log_origin} #{r.log_index})"
                out.dsse.append(VerifierKey(label, r.public_key))
        return out


def _same_certificate(logged: bytes, cert: x509.Certificate) -> bool:
    from cryptography.hazmat.primitives.serialization import Encoding

    return logged in (certificate_pem(cert), cert.public_bytes(Encoding.DER))


def _check(result: dict[str, Any], signature: dsse.Signature, message: bytes, image_id: str,
           found: SignatureEvidence, trust: LongTermTrust) -> None:
    if not trust.log_keys:
        raise VerificationError("no trusted log key given", hint="pass --log-key")
    if requires_identity(found.certificates[0]) and not trust.identity.restricts_identity:
        raise VerificationError("a certificate naming its signer (an ephemeral one) is only "
                                "as good as the identity it names",
                                hint="pass --identity (or --identity-regexp)")
    verified = found.evidence.verify(trust.log_keys)
    entry, sub = verified.entry, verified.entry.submission
    result["log_origin"], result["log_index"] = verified.checkpoint.origin, verified.index
    result["checkpoint_size"], result["logged_at"] = verified.checkpoint.size, entry.integrated_time
    leaf = found.certificates[0]
    result["serial"] = f"{leaf.serial_number:x}"
    if sub.signature != signature.sig:
        raise VerificationError("the log entry records another signature")
    if sub.payload_digest != digest_payload(message, sub.digest_algorithm):
        raise VerificationError("the log entry records another signed payload")
    if not _same_certificate(sub.certificate, leaf):
        raise VerificationError("the log entry records another certificate")
    if sub.image_id != image_id:
        raise VerificationError(f"the log entry is for image {sub.image_id}, not {image_id}")
    # the path first: it also refuses key types a signature cannot be checked with
    validation = validate_signing_certificate(
        leaf, found.certificates[1:], trust.roots, at=entry.integrated_time,
        crls=trust.crls, ocsp_responses=trust.ocsp_responses,
        revocation_mode=trust.revocation_mode)
    public = validation.public_key
    if signature.keyid and signature.keyid != dsse.keyid(public):
        raise VerificationError("the signature's keyid is not the certificate's key")
    if not dsse.verify_pae(public, signature.sig, message):
        raise VerificationError("the signature does not verify with the certificate's key")
    result["issuer"] = leaf.issuer.rfc4514_string()
    result["identity"] = trust.identity.check(leaf)
    if trust.checkpoints is not None:
        outcome = trust.checkpoints.observe(found.evidence.checkpoint, verified.checkpoint,
                                            trust.log_keys, trust.log)
        if outcome.remembered_size is None:
            result["consistency"] = "first checkpoint of this log: remembered"
        elif outcome.checked:
            result["consistency"] = f"consistent with the remembered size {outcome.remembered_size}"
        else:
            result["consistency"] = (f"not checked against the remembered size "
                                  f"{outcome.remembered_size} (no proof offline; use --log-url)")
    result["public_key"] = public
    result["ok"] = True


def check_signature(object_id: int, signature: dsse.Signature, message: bytes, image_id: str,
                    trust: LongTermTrust) -> LongTermResult | None:
    """The long-term result of one DSSE signature, None when it carries no evidence."""
    facts: dict[str, Any] = {"object_id": object_id, "keyid": signature.keyid, "kind": ""}
    try:
        found = parse_extension(signature.extension)
        if found is None:
            return None
        facts["kind"] = found.kind
        _check(facts, signature, message, image_id, found, trust)
    except LifecycleError as exc:
        facts["error"] = str(exc)
    return LongTermResult(**facts)


def image_id(image: SifImage) -> str:
    """The id an image's log entries name: its SIF header UUID."""
    return str(uuid.UUID(bytes=bytes(image.header.id[:16]).ljust(16, b"\0")))


def verify_longterm(path: str, trust: LongTermTrust,
                    groups: Sequence[int] = ()) -> LongTermReport:
    """Check every evidence-carrying DSSE signature linked to ``groups`` (default all)."""
    report = LongTermReport()
    with SifImage.open(path) as image:
        ident = image_id(image)
        for desc, envelope in dsse_envelopes(image, groups):
            for signature in envelope.signatures:
                result = check_signature(desc.id, signature, envelope.pae(), ident, trust)
                if result is not None:
                    report.results.append(result)
    return report
