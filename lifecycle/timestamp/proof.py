"""When did a signature exist? The proven signing time from its RFC 3161 tokens.

A token proves the signature's time only if all of these hold (rejected otherwise, with the
reason, and the signature is then judged as if it carried no token):

* it parses as a granted ``TimeStampResp`` whose CMS signature verifies (rfc3161-client), over
  a message imprint equal to the hash of the signature's bytes;
* its signer certificate has the critical EKU timeStamping and chains, at the token's
  ``genTime``, to a trusted TSA root, with the TSA chain's own revocation evidence (CRLs)
  judged at that time (:func:`lifecycle.pki.validate.validate_timestamping_certificate`).

With several valid tokens the proven time is the latest ``genTime`` (the conservative one), and
tokens further apart than :data:`MAX_SPREAD` (plus their stated accuracy) disagree: none of them
is used. Fewer valid tokens than ``required``: nothing is proven.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from rfc3161_client import VerificationError as TokenError
from rfc3161_client import VerifierBuilder, decode_timestamp_response

from lifecycle.errors import CertificateError, CertificateValidationError, LifecycleError
from lifecycle.integrity import dsse
from lifecycle.integrity.envelopes import dsse_envelopes
from lifecycle.pki.revocation import RevocationMode
from lifecycle.pki.validate import validate_timestamping_certificate
from lifecycle.sif.image import SifImage
from lifecycle.timestamp.tokens import tokens_of

MAX_SPREAD = timedelta(minutes=10)


@dataclass(frozen=True)
class TsaTrust:
    """Whose tokens prove time: TSA roots (and intermediates), their CRLs, how many needed."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    required: int = 1
    revocation: RevocationMode = "hard-fail"


@dataclass(frozen=True)
class TokenCheck:
    """One token's verdict: its genTime and TSA when valid, else why it proves nothing."""

    gen_time: datetime | None
    tsa: str
    serial: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, Any]:
        return {"gen_time": self.gen_time.isoformat() if self.gen_time else None,
                "tsa": self.tsa, "serial": self.serial, "ok": self.ok, "error": self.error}


@dataclass(frozen=True)
class ProvenTime:
    """The proven signing time of one signature (None: not proven) and how it was reached."""

    object_id: int
    keyid: str
    at: datetime | None
    source: str
    tokens: tuple[TokenCheck, ...] = field(default_factory=tuple)

    @property
    def rejected(self) -> tuple[str, ...]:
        return tuple(t.error for t in self.tokens if not t.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "proven_time": self.at.isoformat() if self.at else None,
                "source": self.source, "tokens": [t.to_dict() for t in self.tokens]}


def check_token(token: bytes, signature: bytes, trust: TsaTrust) -> TokenCheck:
    """The verdict on one DER token over ``signature`` (never raises for a bad token)."""
    try:
        response = decode_timestamp_response(token)
        info = response.tst_info
        gen_time, serial = info.gen_time, info.serial_number
        embedded = [x509.load_der_x509_certificate(c) for c in response.signed_data.certificates]
    except (ValueError, TypeError):
        return TokenCheck(None, "?", None, "malformed token (not a DER TimeStampResp)")
    signer = next((c for c in embedded
                   for s in response.signed_data.signer_infos
                   if c.issuer == s.issuer and c.serial_number == s.serial_number), None)
    tsa = signer.subject.rfc4514_string() if signer is not None else "?"
    if signer is None:
        return TokenCheck(gen_time, tsa, serial, "the token does not carry its TSA certificate")
    problem = _tsa_certificate_problem(signer, gen_time)
    if problem:
        return TokenCheck(gen_time, tsa, serial, problem)
    builder = VerifierBuilder()
    for root in trust.roots:
        builder = builder.add_root_certificate(root)
    for inter in {*trust.intermediates, *(c for c in embedded if c is not signer)}:
        builder = builder.add_intermediate_certificate(inter)
    try:
        builder.build().verify_message(response, signature)
    except (TokenError, ValueError) as exc:
        reason = str(exc).split(": ErrorStack", 1)[0][:200]
        if "Mismatch between messages" in reason:
            reason = "the token covers other data than this signature"
        return TokenCheck(gen_time, tsa, serial, f"token rejected: {reason}")
    try:
        validate_timestamping_certificate(
            signer, [*trust.intermediates, *embedded], trust.roots, at=gen_time,
            crls=trust.crls, revocation_mode=trust.revocation)
    except (CertificateValidationError, CertificateError) as exc:
        return TokenCheck(gen_time, tsa, serial, f"TSA not trusted at {gen_time.isoformat()}: "
                                                  f"{exc.message}")
    return TokenCheck(gen_time, tsa, serial)


def _tsa_certificate_problem(cert: x509.Certificate, gen_time: datetime) -> str:
    """Why ``cert`` cannot have issued a token at ``gen_time`` (RFC 3161 2.3), or ""."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or not eku.critical or list(eku.value) != [
            x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]:
        return (f"TSA certificate {cert.subject.rfc4514_string()} lacks the critical, sole "
                "extended key usage timeStamping")
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        return (f"TSA certificate {cert.subject.rfc4514_string()} was not valid at the token's "
                f"genTime {gen_time.isoformat()} (valid {cert.not_valid_before_utc.isoformat()} "
                f"to {cert.not_valid_after_utc.isoformat()})")
    return ""


def _accuracy(token: bytes) -> timedelta:
    try:
        acc = decode_timestamp_response(token).tst_info.accuracy
        return timedelta(seconds=acc.seconds or 0, milliseconds=acc.millis or 0,
                         microseconds=acc.micros or 0)
    except (ValueError, TypeError, AttributeError):
        return timedelta(0)


def prove(object_id: int, signature: dsse.Signature, trust: TsaTrust) -> ProvenTime | None:
    """The proven time of ``signature`` (None when it carries no tokens at all)."""
    try:
        tokens = tokens_of(signature.extension)
    except LifecycleError as exc:
        return ProvenTime(object_id, signature.keyid, None, "not proven",
                          (TokenCheck(None, "?", None, exc.message),))
    if not tokens:
        return None
    checks = [check_token(t, signature.sig, trust) for t in tokens]
    valid = [(c, t) for c, t in zip(checks, tokens, strict=True) if c.ok and c.gen_time]
    times = [c.gen_time for c, _ in valid if c.gen_time is not None]
    if len(times) >= 2:
        slack = MAX_SPREAD + max(_accuracy(t) for _, t in valid) * 2
        if max(times) - min(times) > slack:
            disagree = f"tokens disagree: genTimes {min(times).isoformat()} and " \
                       f"{max(times).isoformat()} are more than {slack} apart"
            checks = [TokenCheck(c.gen_time, c.tsa, c.serial, c.error or disagree)
                      for c in checks]
            return ProvenTime(object_id, signature.keyid, None, "not proven", tuple(checks))
    if len(times) < trust.required:
        return ProvenTime(object_id, signature.keyid, None,
                          f"not proven ({len(times)} valid of {trust.required} required tokens)",
                          tuple(checks))
    latest = max(times)
    chosen = next(c for c, _ in valid if c.gen_time == latest)
    source = f"RFC 3161 token from {chosen.tsa} (serial {chosen.serial})"
    if len(times) > 1:
        source += f", latest of {len(times)} tokens"
    return ProvenTime(object_id, signature.keyid, latest, source, tuple(checks))


def proven_times(image: str | Path, trust: TsaTrust) -> tuple[ProvenTime, ...]:
    """The proven time of every DSSE signature in ``image`` that carries tokens."""
    out: list[ProvenTime] = []
    with SifImage.open(str(image)) as img:
        for desc, envelope in dsse_envelopes(img):
            for signature in envelope.signatures:
                proven = prove(desc.id, signature, trust)
                if proven is not None:
                    out.append(proven)
    return tuple(out)
