"""Is this image trustworthy, under this trust material, at this time? :func:`verify` answers.

The one verdict path of the product: the ``verify`` command, the strategies' pre-sign checks,
offline bundles and the demo all call it, and so can a Python user::

    from lifecycle import TrustMaterial, verify
    result = verify("image.sif", TrustMaterial(keys=("signing.pub",)))

It returns a frozen :class:`VerificationResult` when the image satisfies the policy and raises
:class:`~lifecycle.errors.VerificationError` (with the same result as ``exc.result``) when it
does not, so forgetting to look at ``ok`` cannot turn a failure into a success. Bad input (an
unreadable key, no key at all) raises a plain :class:`~lifecycle.errors.LifecycleError`.

Heavy machinery is imported only when the trust material needs it: path validation (pyhanko)
for certificates, the transparency log for log keys, the bundle reader for bundles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lifecycle.errors import CertificateValidationError, LifecycleError, VerificationError
from lifecycle.files import read_document
from lifecycle.integrity.policy import Policy, PolicyMode
from lifecycle.integrity.results import SignatureResult, TaskResult, VerifyReport
from lifecycle.pki.revocation import RevocationMode
from lifecycle.verification.identity import IdentityPolicy

if TYPE_CHECKING:  # the machinery is imported when a verification runs, not with the API
    from datetime import datetime

    from cryptography import x509

    from lifecycle.bundles.verify import OpenedBundle
    from lifecycle.config import KeyserverSettings
    from lifecycle.integrity.digest import Progress
    from lifecycle.integrity.keys import VerifierKey
    from lifecycle.timestamp.proof import ProvenTime
    from lifecycle.tlog.note import NoteVerifier
    from lifecycle.verification.longterm import LongTermReport, LongTermResult

    FileOrBytes = str | Path | bytes
    CertificateSource = str | Path | x509.Certificate
    """A PEM/DER file (a bundle of several certificates is fine), or a loaded certificate."""

__all__ = [
    "CertificateCheck",
    "IdentityPolicy",
    "Policy",
    "PolicyMode",
    "TrustMaterial",
    "VerificationError",
    "VerificationResult",
    "load_log_verifiers",
    "verify",
]

class _TrustFields(NamedTuple):
    """The fields of :class:`TrustMaterial` (a named tuple: no methods generated at import)."""

    keys: tuple[str | Path | VerifierKey, ...] = ()
    """PEM public keys, certificates (their key, unvalidated), armored PGP keys/keyrings."""
    certificate: CertificateSource | None = None
    """A code-signing certificate whose key is trusted once its path validates at ``at``."""
    intermediates: tuple[CertificateSource, ...] = ()
    roots: tuple[CertificateSource, ...] = ()
    """Trusted roots for ``certificate`` and for the certificates of logged signatures."""
    crls: tuple[FileOrBytes, ...] = ()
    ocsp_responses: tuple[FileOrBytes, ...] = ()
    fetch_ocsp: bool = False
    revocation: RevocationMode = "hard-fail"
    log_keys: tuple[str | Path | NoteVerifier, ...] = ()
    """Trusted log verifier keys (text, a file holding one, or loaded): signatures carrying
    log evidence are judged at the time the log proves they were made."""
    identity: IdentityPolicy = IdentityPolicy()
    checkpoint_store: str | Path | None = None
    log_url: str | None = None
    pgp_keyring: bytes = b""
    """Armored PGP public keys held in memory (as a keyserver served them)."""
    bundle: str | Path | None = None
    """A verification bundle (directory or .tar.gz): its keys, certificates, CRLs, offline."""
    trust_store: str | Path | None = None
    """The bundle trust store (default ``$SIF_LIFECYCLE_TRUST_STORE`` or the user's)."""
    allow_stale: str | None = None
    """Accept an expired bundle for this reason (warned); None: an expired bundle fails."""
    at: datetime | None = None
    """Judge certificates and PGP key expiry at this time (default now)."""
    keyservers: tuple[str, ...] = ()
    """HKP keyservers to fetch the PGP signers' keys from by fingerprint (as ``singularity
    verify`` does); a served key is used only if it has exactly that fingerprint and its
    self-signatures verify. Which keys were fetched, from where, is in the result's notes."""
    keyserver_settings: KeyserverSettings | None = None
    """Timeout and retries for ``keyservers`` (default: the ``[keyserver]`` defaults)."""
    policy: Policy = Policy()
    groups: tuple[int, ...] = ()
    object_ids: tuple[int, ...] = ()
    all_objects: bool = False
    legacy: bool = False
    """Check only legacy (pre-3.6) signatures, which do not protect metadata."""
    tsa_roots: tuple[CertificateSource, ...] = ()
    """Trusted time-stamping authority roots: signatures carrying valid RFC 3161 tokens from
    them are judged at their proven signing time (``crls`` serve the TSA chains too)."""
    timestamps_required: int = 1
    """How many valid tokens prove a signature's time (the latest genTime counts)."""



class TrustMaterial(_TrustFields):
    """Everything a verification may rely on, and how to judge with it.

    Files may be given as paths; the strategies pass keys, certificates and log keys already
    in memory. Nothing is fetched over the network unless ``fetch_ocsp`` or ``log_url`` asks.
    Immutable; ``trust._replace(field=...)`` makes a changed copy.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> TrustMaterial:
        self = super().__new__(cls, *args, **kwargs)
        if self.at is not None and self.at.tzinfo is None:
            raise LifecycleError("the time to verify at must be timezone-aware",
                                 hint="e.g. datetime(2030, 1, 1, tzinfo=UTC)")
        if isinstance(self.policy, str):  # "threshold:2" is what users write
            return self._replace(policy=Policy.parse(self.policy))
        return self


class CertificateCheck(NamedTuple):
    """What validating ``TrustMaterial.certificate`` established."""

    certificate: str
    subject: str
    serial: str
    validated_at: datetime
    path: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    time_source: str = ""
    """Where ``validated_at`` came from when it is a proven signing time (an RFC 3161 token)."""

    def to_dict(self) -> dict[str, Any]:
        doc = {"certificate": self.certificate, "subject": self.subject, "serial": self.serial,
               "validated_at": self.validated_at.isoformat(), "path": list(self.path),
               "warnings": list(self.warnings)}
        if self.time_source:
            doc["time_source"] = self.time_source
        return doc


class VerificationResult(NamedTuple):
    """The verdict on one image, with per-signature results (all frozen)."""

    report: VerifyReport
    """The image check: every signature object and every group or object it had to cover."""
    certificate: CertificateCheck | None = None
    longterm: tuple[LongTermResult, ...] | None = None
    """One result per logged signature; None when no log key was given."""
    notes: tuple[str, ...] = ()
    """What the user must read: warnings (first-use pinning, a stale bundle let through),
    keys fetched."""
    details: tuple[str, ...] = ()
    """What the bundle check found (version, log, certificates left out): shown with
    ``--json``, ``--log-level info``, or when the image fails."""
    proven: tuple[ProvenTime, ...] | None = None
    """One entry per signature carrying RFC 3161 tokens; None when no TSA root was given."""

    @property
    def path(self) -> str:
        return self.report.path

    @property
    def signatures(self) -> tuple[SignatureResult, ...]:
        return self.report.signatures

    @property
    def tasks(self) -> tuple[TaskResult, ...]:
        return self.report.tasks

    @property
    def failures(self) -> tuple[str, ...]:
        """Why it is not trustworthy, most specific first (empty when it is)."""
        logged = tuple(r.error for r in self.longterm or () if not r.ok)
        return (*logged, *(() if self.report.ok else (self.report.failure_summary(),)))

    @property
    def ok(self) -> bool:
        return not self.failures

    def failure_summary(self) -> str:
        return "; ".join(self.failures) or "verified"

    def to_dict(self) -> dict[str, Any]:
        """The ``verify --json`` document."""
        doc = self.report.to_dict()
        if self.notes or self.details:
            doc["notes"] = [*self.notes, *self.details]
        if self.certificate is not None:
            doc["certificate"] = self.certificate.to_dict()
        if self.longterm is not None:
            for sig in doc["signatures"]:
                sig["longterm"] = [r.to_dict() for r in self.longterm
                                   if r.object_id == sig["object_id"]]
            doc["ok"] = self.ok
        if self.proven is not None:
            for sig in doc["signatures"]:
                sig["timestamps"] = [p.to_dict() for p in self.proven
                                     if p.object_id == sig["object_id"]]
        return doc


def verify(image: str | Path, trust: TrustMaterial,
           progress: Progress | None = None) -> VerificationResult:
    """The verdict on ``image`` under ``trust``; raises VerificationError if it is not trusted.

    Image data is read once, whatever the number of signatures; ``progress`` is told the bytes
    hashed.
    """
    from lifecycle.integrity.keys import (
        KeySet,
        VerifierKey,
        load_verifier_keys,
        parse_verifier_keys,
    )
    from lifecycle.integrity.verify import VerifyOptions, verify_image

    _check_material(trust)
    keys = KeySet()
    notes: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    opened: OpenedBundle | None = None
    if trust.bundle is not None:
        from lifecycle.bundles.freshness import StaleOverride
        from lifecycle.bundles.offline import bundle_keys

        offline = bundle_keys(Path(trust.bundle), trust.at, image=Path(image),
                              trust_store=Path(trust.trust_store) if trust.trust_store else None,
                              allow_stale=StaleOverride(trust.allow_stale)
                              if trust.allow_stale is not None else None)
        opened = offline.bundle
        notes = tuple(n for n in offline.notes if n.startswith("WARNING"))
        details = tuple(n for n in offline.notes if not n.startswith("WARNING"))
        keys.merge(offline.keys)
    longterm = _longterm(image, trust) if trust.log_keys else None
    if longterm is None and opened is not None:
        longterm = _bundle_longterm(image, opened, trust)
    if longterm is not None:
        keys.merge(longterm.keys())
    if trust.pgp_keyring:
        keys.merge(parse_verifier_keys(trust.pgp_keyring, Path("<PGP keyring>")))
    for key in trust.keys:
        if isinstance(key, VerifierKey):
            keys.dsse.append(key)
        else:
            keys.merge(load_verifier_keys(Path(key)))
    if trust.keyservers:
        notes += _fetch_signer_keys(image, keys, trust)
    proven = _proven(image, trust) if trust.tsa_roots else None
    checked = None
    if trust.certificate is not None:
        key, checked = _validated_certificate(trust, proven or ())
        keys.dsse.append(key)
    options = VerifyOptions(
        groups=list(trust.groups), object_ids=list(trust.object_ids),
        all_objects=trust.all_objects, legacy=trust.legacy, policy=trust.policy, at=trust.at)
    report = verify_image(str(image), keys, options, progress)
    result = VerificationResult(report, checked,
                                tuple(longterm.results) if longterm is not None else None, notes,
                                details=details, proven=proven)
    if not result.ok:
        raise VerificationError(f"verification failed: {result.failure_summary()}", path=image,
                                result=result)
    return result


def _bundle_longterm(image: str | Path, bundle: OpenedBundle,
                     trust: TrustMaterial) -> LongTermReport | None:
    """Logged signatures judged with the bundle's log, roots, CRLs and identity policy."""
    from lifecycle.bundles.offline import longterm_trust
    from lifecycle.verification.longterm import verify_longterm

    longterm = longterm_trust(bundle, trust.identity)
    report = verify_longterm(str(image), longterm, trust.groups) if longterm is not None else None
    return report if report is not None and report.results else None


def _check_material(trust: TrustMaterial) -> None:
    if not (trust.keys or trust.pgp_keyring or trust.certificate is not None or trust.log_keys
            or trust.bundle is not None or trust.keyservers):
        raise LifecycleError(
            "no verification key given",
            hint="pass --key FILE (PEM public key or armored PGP keyring), --certificate, "
                 "--bundle, or --log-key for logged (ephemeral) signatures")
    if not trust.log_keys and ((trust.identity != IdentityPolicy() and trust.bundle is None)
                               or trust.checkpoint_store or trust.log_url):
        raise LifecycleError("--identity, --issuer, --checkpoint-store and --log-url need "
                             "--log-key (the log that proves when signatures were made)")
    if trust.certificate is not None and not trust.roots:
        raise LifecycleError("--certificate needs --certificate-roots (the trusted CA root)")
    if trust.log_keys and not trust.roots:
        raise LifecycleError("--log-key needs --certificate-roots (the CA root that issued the "
                             "signing certificates)")


def pgp_signers(image: str | Path) -> list[str]:
    """The fingerprints the image's PGP signature descriptors name (the reference's Entity)."""
    from lifecycle.sif import SifImage

    with SifImage.open(image) as img:
        entities = [d.signature_entity for d in img.objects if d.is_signature]
    return list(dict.fromkeys(e.hex().upper() for e in entities if any(e)))


def _fetch_signer_keys(image: str | Path, keys: Any, trust: TrustMaterial) -> tuple[str, ...]:
    """Fetch every PGP signer's key not given otherwise; the notes say what came from where."""
    from lifecycle.config import KeyserverSettings
    from lifecycle.errors import KeyNotOnKeyserverError
    from lifecycle.integrity.pgp import fingerprint
    from lifecycle.keyserver.pool import clients, fetch

    have = {fingerprint(k) for k in keys.pgp}
    servers = clients(trust.keyserver_settings or KeyserverSettings(), trust.keyservers)
    notes = []
    for fpr in pgp_signers(image):
        if fpr in have:
            continue
        try:
            got = fetch(servers, fpr)
        except KeyNotOnKeyserverError as exc:  # its signature then fails: no key for it
            notes.append(f"PGP key {fpr} not fetched: {exc.message}")
            continue
        keys.pgp.append(got.key)
        keys.pgp_labels[fpr] = f"{got.url} (fetched)"
        notes.append(f"fetched PGP key {fpr} from {got.url}")
    if not notes:
        notes.append("no PGP signer's key was fetched: every one was given, or none signed")
    return tuple(notes)


def _blobs(items: Sequence[FileOrBytes]) -> tuple[bytes, ...]:
    return tuple(item if isinstance(item, bytes) else read_document(item) for item in items)


def _certificates(items: Sequence[CertificateSource]) -> list[x509.Certificate]:
    from cryptography import x509

    from lifecycle.pki.certs import load_certificates

    out: list[x509.Certificate] = []
    for item in items:
        out += [item] if isinstance(item, x509.Certificate) else load_certificates(
            read_document(item), path=item)
    return out


def load_log_verifiers(values: Sequence[str | Path | NoteVerifier]) -> list[NoteVerifier]:
    """Log verifier keys given as text, as files holding one, or already loaded."""
    from lifecycle.tlog.note import NoteVerifier

    out = []
    for value in values:
        if isinstance(value, NoteVerifier):
            out.append(value)
            continue
        path = Path(value)
        text = read_document(path).decode("utf-8", "replace").strip() if path.is_file() else str(value)
        out.append(NoteVerifier.from_verifier_key(text))
    return out


def _longterm(image: str | Path, trust: TrustMaterial) -> LongTermReport:
    from lifecycle.tlog.client import HttpLogClient
    from lifecycle.verification.checkpoints import CheckpointStore
    from lifecycle.verification.longterm import LongTermTrust, verify_longterm

    store = CheckpointStore(Path(trust.checkpoint_store)) if trust.checkpoint_store else None
    longterm = LongTermTrust(
        tuple(_certificates(trust.roots)), tuple(load_log_verifiers(trust.log_keys)),
        trust.identity, _blobs(trust.crls), _blobs(trust.ocsp_responses), trust.revocation,
        store, HttpLogClient(trust.log_url) if trust.log_url else None)
    return verify_longterm(str(image), longterm, trust.groups)


def _proven(image: str | Path, trust: TrustMaterial) -> tuple[ProvenTime, ...]:
    from lifecycle.timestamp.proof import TsaTrust, proven_times

    if trust.timestamps_required < 1:
        raise LifecycleError("timestamps_required must be at least 1")
    return proven_times(image, TsaTrust(
        tuple(_certificates(trust.tsa_roots)), tuple(_certificates(trust.intermediates)),
        _blobs(trust.crls), trust.timestamps_required, trust.revocation))


def _signing_time(leaf: x509.Certificate, proven: Sequence[ProvenTime]) -> ProvenTime | None:
    """The proven time of the signatures by ``leaf``'s key: the latest, and only when every
    signature by that key that carries tokens proved one (otherwise judge as untimestamped)."""
    from datetime import datetime

    from lifecycle.integrity import dsse
    from lifecycle.integrity.dsse import PublicKey

    public = leaf.public_key()
    if not isinstance(public, PublicKey):
        return None
    mine = [p for p in proven if p.keyid == dsse.keyid(public)]
    if not mine or any(p.at is None for p in mine):
        return None
    return max(mine, key=lambda p: p.at or datetime.min)


def _validated_certificate(trust: TrustMaterial, proven: Sequence[ProvenTime] = ()
                           ) -> tuple[VerifierKey, CertificateCheck]:
    """The certificate's key, once its path validated at the proven signing time of its
    signatures (RFC 3161 tokens), else at ``trust.at``, and what was checked."""
    from cryptography import x509

    from lifecycle.integrity.keys import VerifierKey
    from lifecycle.pki.certs import load_certificate
    from lifecycle.pki.validate import validate_signing_certificate  # pyhanko: only when needed

    source = trust.certificate
    assert source is not None
    leaf = source if isinstance(source, x509.Certificate) else load_certificate(
        read_document(source), path=source)
    label = str(source) if not isinstance(source, x509.Certificate) else \
        f"certificate {leaf.serial_number:x}"
    signed = _signing_time(leaf, proven)
    try:
        valid = validate_signing_certificate(
            leaf, _certificates(trust.intermediates), _certificates(trust.roots),
            at=signed.at if signed is not None else trust.at,
            crls=_blobs(trust.crls), ocsp_responses=_blobs(trust.ocsp_responses),
            fetch_ocsp=trust.fetch_ocsp, revocation_mode=trust.revocation)
    except CertificateValidationError as exc:
        rejected = [r for p in proven for r in p.rejected]
        if signed is not None or not rejected:
            raise
        raise CertificateValidationError(
            f"{exc.message}; judged as untimestamped, as its timestamps prove nothing: "
            f"{'; '.join(rejected)}", path=exc.path, hint=exc.hint) from exc
    checked = CertificateCheck(label, leaf.subject.rfc4514_string(), f"{leaf.serial_number:x}",
                               valid.at, tuple(c.subject.rfc4514_string() for c in valid.path),
                               tuple(valid.warnings), signed.source if signed is not None else "")
    return VerifierKey(label, valid.public_key), checked

