"""The local CA with its state in the store: ties the pure builders in ``lifecycle.pki`` to rows.

Issuance data (certificates, revocations, numbered CRLs) lives in the database; CA private keys
live encrypted in the key directory like any other key. A revocation regenerates the issuer's
CRL at once and tells listeners (the OCSP responder) to drop their cached answer.
Just over ~400 lines: every operation that writes CA rows, checked before it creates anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import func
from sqlmodel import Session, col, select

from lifecycle.config import CaSettings as CaSettings  # moved down: plain config data
from lifecycle.config import OcspResponderMode
from lifecycle.errors import CertificateError, KeyMaterialError, KeyNotFoundError
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.pki import ca, crl, keys
from lifecycle.pki.certs import certificate_pem, load_certificate
from lifecycle.pki.ocsp import CertStatus, OcspSigner, signer_for
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.store.key_service import KeyService
from lifecycle.store.models import (
    CertificateRecord,
    CrlRecord,
    KeyRecord,
    RevocationRecord,
    serial_hex,
)

ROOT, INTERMEDIATE, LEAF, OCSP = CaRole.ROOT, CaRole.INTERMEDIATE, CaRole.LEAF, CaRole.OCSP
EPHEMERAL, EPHEMERAL_LEAF = CaRole.EPHEMERAL, CaRole.EPHEMERAL_LEAF
TSA = CaRole.TSA
"""Short names for the roles (see :class:`CaRole`), as the CLI and bundles import them."""
_UNUSABLE = frozenset({KeyState.REVOKED, KeyState.COMPROMISED, KeyState.RETIRED})


@dataclass(frozen=True)
class Issued:
    """A certificate with the store row that records it."""

    certificate: x509.Certificate
    record: CertificateRecord


def _cert(row: CertificateRecord) -> x509.Certificate:
    return load_certificate(row.pem.encode(), path=f"certificate {row.serial}")


class CaService:
    def __init__(self, keys_service: KeyService, passphrase: bytes,
                 settings: CaSettings | None = None) -> None:
        self.keys = keys_service
        self.engine = keys_service.engine
        self.passphrase = passphrase
        self.settings = settings or CaSettings()
        self.listeners: list[Callable[[int], None]] = []

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.keys.clock

    # -- lookups ---------------------------------------------------------------------------

    def _role(self, session: Session, role: str) -> CertificateRecord:
        row = session.exec(select(CertificateRecord).where(CertificateRecord.role == role)
                           .order_by(col(CertificateRecord.id).desc())).first()
        if row is None:
            raise KeyNotFoundError(f"the CA has no {role} certificate",
                                   hint="run 'sif-lifecycle ca init' first")
        return row

    def certificate(self, role: str) -> x509.Certificate:
        with session_scope(self.engine) as session:
            return _cert(self._role(session, role))

    def find(self, serial: str | int) -> CertificateRecord:
        """A certificate by serial (hex, with or without colons, or an int)."""
        text = serial_hex(serial) if isinstance(serial, int) else (
            serial.lower().replace(":", "").removeprefix("0x").lstrip("0") or "0")
        with session_scope(self.engine) as session:
            row = session.exec(select(CertificateRecord).where(
                CertificateRecord.serial == text)).first()
        if row is None:
            raise KeyNotFoundError(f"no certificate with serial {serial} in the store",
                                   hint="see 'sif-lifecycle ca list'")
        return row

    def certificates(self) -> list[CertificateRecord]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(CertificateRecord).order_by(col(CertificateRecord.id))))

    def _signer(self, role: str) -> tuple[x509.Certificate, keys.PrivateKey, int]:
        with session_scope(self.engine) as session:
            row = self._role(session, role)
            key_row = session.get_one(KeyRecord, row.key_id)
        return _cert(row), self.keys.private_key(key_row, self.passphrase), row.id or 0

    def _record(self, session: Session, cert: x509.Certificate, role: str, now: datetime, *,
                issuer_id: int | None, key_id: int | None,
                reissue_of_id: int | None = None) -> CertificateRecord:
        row = CertificateRecord(
            serial=serial_hex(cert.serial_number), role=role,
            subject=cert.subject.rfc4514_string(), issuer_id=issuer_id, key_id=key_id,
            reissue_of_id=reissue_of_id, not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, pem=certificate_pem(cert).decode(),
            created_at=now)
        session.add(row)
        session.flush()
        audit.record(session, now, f"cert.{role}", row.serial, name=row.subject,
                     not_after=row.not_after, reissue_of=reissue_of_id)
        return row

    def _activate(self, key_row: KeyRecord, reason: str, now: datetime) -> None:
        self.keys.transition(key_row.fingerprint, KeyState.ACTIVE, reason, at=now)

    # -- operations ------------------------------------------------------------------------

    def init(self, *, root_algorithm: keys.KeyAlgorithm, intermediate_algorithm: keys.KeyAlgorithm,
             root_lifetime: timedelta, intermediate_lifetime: timedelta,
             common_name: str = "sif-lifecycle") -> tuple[x509.Certificate, x509.Certificate]:
        """Create root, intermediate and OCSP signer, and publish the first CRLs."""
        with session_scope(self.engine) as session:
            if session.exec(select(CertificateRecord).where(
                    CertificateRecord.role == ROOT)).first() is not None:
                raise CertificateError("the CA is already initialised",
                                       hint="use a new database to start another CA")
        self._check_init(root_lifetime, intermediate_lifetime, common_name)
        now = self.clock()
        org = self.settings.organization
        root_key_row = self.keys.generate(root_algorithm, self.passphrase, purpose="ca-root",
                                          now=now)
        inter_key_row = self.keys.generate(intermediate_algorithm, self.passphrase,
                                           purpose="ca-intermediate", now=now)
        root_key = self.keys.private_key(root_key_row, self.passphrase)
        inter_key = self.keys.private_key(inter_key_row, self.passphrase)
        root = ca.build_root(root_key, ca.name(f"{common_name} Root CA", org), not_before=now,
                             lifetime=root_lifetime)
        inter = ca.build_intermediate(
            root, root_key, inter_key.public_key(), ca.name(f"{common_name} Signing CA", org),
            not_before=now, lifetime=intermediate_lifetime, urls=self.settings.urls)
        with session_scope(self.engine) as session:
            root_row = self._record(session, root, ROOT, now, issuer_id=None,
                                    key_id=root_key_row.id)
            self._record(session, inter, INTERMEDIATE, now, issuer_id=root_row.id,
                         key_id=inter_key_row.id)
        self._activate(root_key_row, "CA root created", now)
        self._activate(inter_key_row, "CA intermediate created", now)
        self.rotate_ocsp_signer(now=now)
        self.publish_crls(force=True, now=now)
        return root, inter

    def _check_init(self, root_lifetime: timedelta, intermediate_lifetime: timedelta,
                    common_name: str) -> None:
        """What ``init`` could fail on, checked before the first key is made: a failure half-way
        would leave a CA that a rerun calls "already initialised"."""
        if not timedelta(0) < intermediate_lifetime <= root_lifetime:
            raise CertificateError(
                f"the intermediate lifetime ({intermediate_lifetime.days} days) must be positive "
                f"and no longer than the root's ({root_lifetime.days} days)",
                hint="choose --intermediate-days <= --root-days")
        # CA names are refused, not shortened: two shortened names could become one issuer
        for suffix in ("Root CA", "Signing CA", "Ephemeral Signing CA"):
            cn = f"{common_name} {suffix}"
            if len(cn) > ca.MAX_NAME_ATTRIBUTE:
                raise CertificateError(f"CA name {cn!r} is {len(cn)} characters, more than the "
                                       f"{ca.MAX_NAME_ATTRIBUTE} a certificate name may have",
                                       hint="choose a shorter --name")
        if len(self.settings.organization or "") > ca.MAX_NAME_ATTRIBUTE:
            raise CertificateError(f"organization is longer than {ca.MAX_NAME_ATTRIBUTE} characters",
                                   hint="shorten [ca] organization")

    def init_ephemeral(self, *, algorithm: keys.KeyAlgorithm = keys.KeyAlgorithm.P256,
                       lifetime: timedelta = timedelta(days=3650),
                       common_name: str = "sif-lifecycle",
                       now: datetime | None = None) -> x509.Certificate:
        """Create the ephemeral signing CA under the root (its lifetime capped by the root's)."""
        with session_scope(self.engine) as session:
            if session.exec(select(CertificateRecord).where(
                    CertificateRecord.role == EPHEMERAL)).first() is not None:
                raise CertificateError("the ephemeral signing CA already exists")
        root, root_key, root_id = self._signer(ROOT)
        now = now or self.clock()
        key_row = self.keys.generate(algorithm, self.passphrase, purpose="ca-ephemeral", now=now)
        key = self.keys.private_key(key_row, self.passphrase)
        cert = ca.build_intermediate(
            root, root_key, key.public_key(),
            ca.name(f"{common_name} Ephemeral Signing CA", self.settings.organization),
            not_before=now, lifetime=min(lifetime, root.not_valid_after_utc - now),
            urls=self.settings.urls)
        with session_scope(self.engine) as session:
            self._record(session, cert, EPHEMERAL, now, issuer_id=root_id, key_id=key_row.id)
        self._activate(key_row, "ephemeral signing CA created", now)
        self.publish_crl(EPHEMERAL, force=True, now=now)
        return cert

    def has_role(self, role: str) -> bool:
        with session_scope(self.engine) as session:
            return session.exec(select(CertificateRecord).where(
                CertificateRecord.role == role)).first() is not None

    def issue_ephemeral(self, public_key: keys.PublicKey, identity: x509.GeneralName,
                        lifetime: timedelta, now: datetime | None = None) -> Issued:
        """A short-lived code-signing certificate naming ``identity`` in its SAN.

        No CRL or OCSP location: a certificate that expires in minutes is never revoked; one
        distrusts the ephemeral CA (revokes it on the root's CRL) or the log entries instead.
        The key is not the store's (it lives only in the signer's memory), so the row has none.
        """
        if not self.has_role(EPHEMERAL):
            raise KeyNotFoundError("the CA has no ephemeral signing CA",
                                   hint="run 'sif-lifecycle ca init --ephemeral' first")
        issuer, issuer_key, issuer_id = self._signer(EPHEMERAL)
        now = now or self.clock()
        cert = ca.issue_code_signing(
            issuer, issuer_key, public_key,
            ca.name(str(identity.value), self.settings.organization),
            not_before=now, lifetime=lifetime, urls=ca.CaUrls(),
            identities=[identity])
        with session_scope(self.engine) as session:
            row = self._record(session, cert, EPHEMERAL_LEAF, now, issuer_id=issuer_id,
                               key_id=None)
        return Issued(cert, row)

    def rotate_ocsp_signer(self, now: datetime | None = None) -> x509.Certificate:
        """A fresh delegated OCSP key and certificate, issued by the intermediate."""
        now = now or self.clock()
        inter, inter_key, inter_id = self._signer(INTERMEDIATE)
        key_row = self.keys.generate(keys.KeyAlgorithm.P256, self.passphrase, purpose="ocsp",
                                     now=now)
        key = self.keys.private_key(key_row, self.passphrase)
        lifetime = min(self.settings.ocsp_signer_lifetime, inter.not_valid_after_utc - now)
        cert = ca.issue_ocsp_signer(
            inter, inter_key, key.public_key(), ca.name("sif-lifecycle OCSP responder",
                                                        self.settings.organization),
            not_before=now, lifetime=lifetime)
        with session_scope(self.engine) as session:
            self._record(session, cert, OCSP, now, issuer_id=inter_id, key_id=key_row.id)
        self._activate(key_row, "OCSP responder certificate issued", now)
        return cert

    def renew_ocsp_signer(self, now: datetime | None = None) -> x509.Certificate | None:
        """With ``[ca] ocsp_responder = "delegated"``: a new responder certificate once half of
        the current one's life has passed, so that responses are never signed under an expired
        certificate (and the expiry alert, a third ahead, stays quiet). The old key is retired:
        the responses it signed carry their certificate and stay verifiable until it expires.
        None when nothing is due (or responses are signed by the CA itself)."""
        if self.settings.ocsp_responder is not OcspResponderMode.DELEGATED:
            return None
        now = now or self.clock()
        with session_scope(self.engine) as session:
            row = self._role(session, OCSP)
            old = session.get_one(KeyRecord, row.key_id)
        current = _cert(row)
        life = current.not_valid_after_utc - current.not_valid_before_utc
        if current.not_valid_after_utc - now > life / 2:
            return None
        fresh = self.rotate_ocsp_signer(now=now)
        if KeyState(old.state) is KeyState.ACTIVE:
            for state in (KeyState.RETIRING, KeyState.RETIRED):
                self.keys.transition(old.fingerprint, state, "OCSP responder certificate renewed",
                                     at=now)
        return fresh

    def issue_tsa(self, lifetime: timedelta, now: datetime | None = None) -> x509.Certificate:
        """A new time-stamping certificate and key (encrypted at rest), issued by the
        intermediate; its validity is capped by the intermediate's."""
        now = now or self.clock()
        inter, inter_key, inter_id = self._signer(INTERMEDIATE)
        key_row = self.keys.generate(keys.KeyAlgorithm.P256, self.passphrase, purpose="tsa",
                                     now=now)
        key = self.keys.private_key(key_row, self.passphrase)
        cert = ca.issue_timestamping(
            inter, inter_key, key.public_key(),
            ca.name("sif-lifecycle Timestamping Authority", self.settings.organization),
            not_before=now, lifetime=min(lifetime, inter.not_valid_after_utc - now),
            urls=self.settings.urls)
        with session_scope(self.engine) as session:
            self._record(session, cert, TSA, now, issuer_id=inter_id, key_id=key_row.id)
        self._activate(key_row, "time-stamping certificate issued", now)
        return cert

    def signer(self, role: str) -> tuple[x509.Certificate, keys.PrivateKey]:
        """The newest certificate of ``role`` and its private key (decrypted)."""
        cert, key, _ = self._signer(role)
        return cert, key

    def issue(self, key_ident: str, common_name: str, lifetime: timedelta, *,
              now: datetime | None = None) -> Issued:
        """A code-signing certificate for a store key, valid from ``now`` (default: the clock)."""
        now = now or self.clock()
        key_row = self.keys.get(key_ident)
        if key_row.kind != "pem" or key_row.purpose != "signing":
            raise CertificateError(f"key {key_row.fingerprint} is not a PEM signing key",
                                   hint="certificates are issued for PEM signing keys only")
        if key_row.state in _UNUSABLE:
            raise CertificateError(f"key {key_row.fingerprint} is {key_row.state}",
                                   hint="issue certificates only for pending or active keys")
        public = keys.load_public_key(self.keys.public_bytes(key_ident, self.passphrase),
                                      path=key_row.file)
        inter, inter_key, inter_id = self._signer(INTERMEDIATE)
        cert = ca.issue_code_signing(
            inter, inter_key, public, ca.name(common_name, self.settings.organization),
            not_before=now, lifetime=lifetime, urls=self.settings.urls)
        with session_scope(self.engine) as session:
            row = self._record(session, cert, LEAF, now, issuer_id=inter_id, key_id=key_row.id)
        return Issued(cert, row)

    def reissue(self, serial: str, lifetime: timedelta, *,
                now: datetime | None = None) -> Issued:
        """New certificate, same key and subject: old signatures verify with either."""
        now = now or self.clock()
        old_row = self.find(serial)
        if old_row.role != LEAF:
            raise CertificateError(f"certificate {old_row.serial} is a {old_row.role} "
                                   "certificate; only code-signing leaves are re-issued")
        if self.revocation(old_row) is not None:
            raise CertificateError(f"certificate {old_row.serial} is revoked",
                                   hint="issue a certificate for a new key instead")
        inter, inter_key, inter_id = self._signer(INTERMEDIATE)
        cert = ca.reissue(inter, inter_key, _cert(old_row), not_before=now,
                          lifetime=lifetime, urls=self.settings.urls)
        with session_scope(self.engine) as session:
            row = self._record(session, cert, LEAF, now, issuer_id=inter_id, key_id=old_row.key_id,
                               reissue_of_id=old_row.id)
        return Issued(cert, row)

    def reissue_intermediate(self, lifetime: timedelta | None = None, *,
                             now: datetime | None = None) -> Issued:
        """A new intermediate certificate for the SAME subject and key, with today's URLs (AIA
        OCSP included): every leaf it issued chains to either. ``lifetime`` defaults to the
        current one's, and is capped by the root's end. Its CRL is published at once."""
        now = now or self.clock()
        with session_scope(self.engine) as session:
            old_row = self._role(session, INTERMEDIATE)
        old = _cert(old_row)
        root, root_key, root_id = self._signer(ROOT)
        wanted = lifetime or (old.not_valid_after_utc - old.not_valid_before_utc)
        cert = ca.build_intermediate(
            root, root_key, old.public_key(), old.subject,  # type: ignore[arg-type]
            not_before=now, lifetime=min(wanted, root.not_valid_after_utc - now),
            urls=self.settings.urls)
        with session_scope(self.engine) as session:
            row = self._record(session, cert, INTERMEDIATE, now, issuer_id=root_id,
                               key_id=old_row.key_id, reissue_of_id=old_row.id)
        self.publish_crl(INTERMEDIATE, force=True, now=now)
        return Issued(cert, row)

    def revocation(self, row: CertificateRecord) -> RevocationRecord | None:
        with session_scope(self.engine) as session:
            return session.exec(select(RevocationRecord).where(
                RevocationRecord.certificate_id == row.id)).first()

    def revoke(self, serial: str, reason: x509.ReasonFlags, *,
               invalidity_date: datetime | None = None,
               now: datetime | None = None) -> RevocationRecord:
        row = self.find(serial)
        if row.issuer_id is None:
            raise CertificateError("the root certificate cannot be revoked by its own CRL",
                                   hint="distrust the root instead")
        if self.revocation(row) is not None:
            raise CertificateError(f"certificate {row.serial} is already revoked")
        now = now or self.clock()
        if invalidity_date is not None and invalidity_date > now:
            raise CertificateError("the invalidity date is in the future",
                                   hint="give the time the key was (suspected) compromised")
        with session_scope(self.engine) as session:
            revocation = RevocationRecord(certificate_id=row.id or 0, issuer_id=row.issuer_id,
                                          revoked_at=now, reason=reason.value,
                                          invalidity_date=invalidity_date)
            session.add(revocation)
            audit.record(session, now, "cert.revoke", row.serial, reason=reason.value,
                         invalidity_date=invalidity_date)
        with session_scope(self.engine) as session:
            issuer_role = session.get_one(CertificateRecord, row.issuer_id).role
        self.publish_crl(issuer_role, force=True, now=now)
        serial_int = int(row.serial, 16)
        for listener in self.listeners:
            listener(serial_int)
        return revocation

    # -- CRLs and OCSP status -----------------------------------------------------------------

    def _same_ca(self, session: Session, issuer_row: CertificateRecord) -> list[int]:
        """Ids of every certificate of the CA ``issuer_row`` is one of (same role and subject):
        a re-issued intermediate still answers for what its earlier certificates issued."""
        return [r.id or 0 for r in session.exec(select(CertificateRecord).where(
            CertificateRecord.role == issuer_row.role,
            CertificateRecord.subject == issuer_row.subject))]

    def _entries(self, session: Session, issuer_row: CertificateRecord) -> list[crl.RevokedEntry]:
        rows = session.exec(
            select(RevocationRecord, CertificateRecord.serial)
            .join(CertificateRecord, col(CertificateRecord.id) == RevocationRecord.certificate_id)
            .where(col(RevocationRecord.issuer_id).in_(self._same_ca(session, issuer_row))))
        return [crl.RevokedEntry(int(serial, 16), r.revoked_at, x509.ReasonFlags(r.reason),
                                 r.invalidity_date) for r, serial in rows]

    def publish_crl(self, role: str, *, force: bool = False,
                    now: datetime | None = None) -> bytes:
        """The current DER CRL of ``role``'s CA at ``now`` (default: the clock); a new one once
        half its lifetime has passed."""
        now = now or self.clock()
        with session_scope(self.engine) as session:
            issuer_row = self._role(session, role)
            latest = session.exec(select(CrlRecord).where(  # CRL numbers go on across re-issues
                col(CrlRecord.issuer_id).in_(self._same_ca(session, issuer_row)))
                                  .order_by(col(CrlRecord.number).desc())).first()
            if latest is not None and not force:
                half = latest.this_update + (latest.next_update - latest.this_update) / 2
                if now < half:
                    return latest.der
            entries = self._entries(session, issuer_row)
            key_row = session.get_one(KeyRecord, issuer_row.key_id)
        issuer = _cert(issuer_row)
        number = (latest.number + 1) if latest is not None else 1
        next_update = min(now + self.settings.crl_lifetime, issuer.not_valid_after_utc)
        der = crl.build_crl(issuer, self.keys.private_key(key_row, self.passphrase), entries,
                            number=number, this_update=now, next_update=next_update
                            ).public_bytes(serialization.Encoding.DER)
        with session_scope(self.engine) as session:
            session.add(CrlRecord(issuer_id=issuer_row.id or 0, number=number, this_update=now,
                                  next_update=next_update, der=der))
            audit.record(session, now, "crl.publish", issuer_row.serial, number=number,
                         entries=len(entries))
        return der

    def publish_crls(self, *, force: bool = False,
                     now: datetime | None = None) -> dict[str, bytes]:
        return {role: self.publish_crl(role, force=force, now=now)
                for role in (ROOT, INTERMEDIATE)}

    def status(self, serial: int) -> CertStatus | None:
        """What OCSP says about ``serial``: None if the intermediate never issued it."""
        return self.status_under(self.certificate(INTERMEDIATE), serial)

    def status_under(self, issuer: x509.Certificate, serial: int) -> CertStatus | None:
        """What the CA ``issuer`` says about ``serial`` (None: it never issued it)."""
        with session_scope(self.engine) as session:
            issuer_row = session.exec(select(CertificateRecord).where(
                CertificateRecord.serial == serial_hex(issuer.serial_number))).first()
            if issuer_row is None:
                return None
            row = session.exec(select(CertificateRecord).where(
                CertificateRecord.serial == serial_hex(serial),
                col(CertificateRecord.issuer_id).in_(self._same_ca(session, issuer_row)))).first()
            if row is None:
                return None
            revocation = session.exec(select(RevocationRecord).where(
                RevocationRecord.certificate_id == row.id)).first()
        if revocation is None:
            return CertStatus(serial)
        reason = x509.ReasonFlags(revocation.reason)
        return CertStatus(serial, revocation.revoked_at,
                          None if reason is x509.ReasonFlags.unspecified else reason)

    def ocsp_signer(self) -> OcspSigner:
        """Who signs for the intermediate's certificates: its own key, or (``[ca]
        ocsp_responder = "delegated"``) the delegated responder, whose certificate is embedded."""
        inter, inter_key, _ = self._signer(INTERMEDIATE)
        lifetime = self.settings.ocsp_response_lifetime
        if self.settings.ocsp_responder is not OcspResponderMode.DELEGATED:
            return OcspSigner(inter, inter_key, None, lifetime)
        with session_scope(self.engine) as session:
            row = self._role(session, OCSP)
            key_row = session.get_one(KeyRecord, row.key_id)
        if key_row.state in _UNUSABLE:
            raise KeyMaterialError("the OCSP responder key is no longer usable",
                                   hint="run 'sif-lifecycle ca init' on a new store")
        return OcspSigner(inter, self.keys.private_key(key_row, self.passphrase), _cert(row),
                          lifetime)

    def ocsp_signers(self) -> list[OcspSigner]:
        """Every CA that answers OCSP: the intermediate for the leaves, and the root, with its
        own key, for the CAs it issued. The root's responses live as long as the root CRL and
        are re-signed on the same rule (half their lifetime), so the root key is used on the
        root CRL's schedule."""
        root, root_key, _ = self._signer(ROOT)
        return [self.ocsp_signer(), OcspSigner(root, root_key, None, self.settings.crl_lifetime)]

    def presigned_ocsp(self, rows: list[CertificateRecord], now: datetime,
                       validity: timedelta | None = None) -> dict[str, bytes]:
        """DER OCSP responses for ``rows`` (leaves or intermediates, by serial), signed at
        ``now`` by the CA that issued each, as ``serve`` answers them, to be carried offline;
        valid for ``validity`` when given (a bundle's), else each responder's own lifetime.

        SHA-1 CertIDs, as RFC 5019 clients, OpenSSL and stock ``--ocsp-verify`` ask for them.
        """
        signers = self.ocsp_signers()
        if validity is not None:
            signers = [replace(s, validity=validity) for s in signers]
        answers: dict[str, bytes] = {}
        for row in rows:
            cert = _cert(row)
            signer = signer_for(signers, cert)
            if signer is None:
                raise CertificateError(f"certificate {row.serial} was not issued by this CA's "
                                       "root or intermediate", hint="see 'sif-lifecycle ca list'")
            serial = cert.serial_number
            answers[row.serial] = signer.sign(
                self.status_under(signer.issuer, serial), serial,
                hashes.SHA1(), now)  # noqa: S303 - a CertID, not a signature
        return answers

    def revision(self) -> tuple[int, int]:
        """Changes when certificates or revocations change: lets other processes refresh caches."""
        with session_scope(self.engine) as session:
            certs = session.exec(select(func.count()).select_from(CertificateRecord)).one()
            revoked = session.exec(select(func.count()).select_from(RevocationRecord)).one()
        return int(certs), int(revoked)
