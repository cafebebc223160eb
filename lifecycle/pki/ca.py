"""Certificate building for the local CA: root, intermediate, code-signing leaves, OCSP signer.

Pure functions over keys, names and times (the caller passes the clock); persistence and policy
live in the store's CA service. Re-issuance keeps the subject and public key and changes only the
serial and validity, which is what lets old signatures verify against the new certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from lifecycle.config import CaUrls as CaUrls  # moved down: plain config data
from lifecycle.errors import CertificateError
from lifecycle.pki.certs import require_code_signing
from lifecycle.pki.keys import PrivateKey, PublicKey


def signing_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The digest to sign with: none for Ed25519 (pure), SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


MAX_NAME_ATTRIBUTE = 64
"""RFC 5280's upper bound for commonName and organizationName (cryptography enforces it)."""


def shortened(text: str, limit: int = MAX_NAME_ATTRIBUTE) -> str:
    """``text`` cut to ``limit`` characters with a marker; names are labels, never matched.

    Identities (workflow URIs of 100-200 characters) travel in full in the SubjectAltName,
    which is what verifiers match; the subject only has to stay a valid, readable name.
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name(common_name: str, organization: str | None = None) -> x509.Name:
    """A subject of CN (and O); over-long values are shortened to stay valid (RFC 5280)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, shortened(common_name))]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, shortened(organization)))
    return x509.Name(attrs)


def _base(
    subject: x509.Name,
    public_key: PublicKey,
    issuer: x509.Certificate | None,
    not_before: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    """Serial, names, validity and key identifiers shared by every certificate we issue."""
    if not_before.utcoffset() is None:
        raise ValueError("not_before must be timezone-aware")
    not_after = not_before + lifetime
    if issuer is not None and not_after > issuer.not_valid_after_utc:
        raise CertificateError(
            f"requested validity ends {not_after.isoformat()}, after the issuing CA "
            f"{issuer.subject.rfc4514_string()} expires ({issuer.not_valid_after_utc.isoformat()})",
            hint="choose a shorter lifetime or renew the CA",
        )
    builder = (
        x509.CertificateBuilder()
        .serial_number(x509.random_serial_number())
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    signer_public = issuer.public_key() if issuer is not None else public_key
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public)  # type: ignore[arg-type]
    return builder.add_extension(aki, critical=False)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    uri = x509.UniformResourceIdentifier(url)
    return x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def _signing_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def _aia(ocsp_url: str | None, ca_issuers_url: str | None = None,
         ) -> x509.AuthorityInformationAccess | None:
    """AIA with the OCSP responder first (stock verifiers POST to the first OCSP URL)."""
    access = []
    if ocsp_url:
        access.append(x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)))
    if ca_issuers_url:
        access.append(x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(ca_issuers_url)))
    return x509.AuthorityInformationAccess(access) if access else None


def build_root(
    key: PrivateKey, subject: x509.Name, *, not_before: datetime, lifetime: timedelta
) -> x509.Certificate:
    builder = (
        _base(subject, key.public_key(), None, not_before, lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    return builder.sign(key, signing_hash(key))


def build_intermediate(
    root: x509.Certificate,
    root_key: PrivateKey,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    lifetime: timedelta,
    urls: CaUrls,
) -> x509.Certificate:
    """A CA below the root (pathlen 0): CRL DP of the root CRL and AIA OCSP, where the root
    answers for it (stock ``--ocsp-verify`` checks every certificate below the root).

    Re-issuing one is calling this again with the old subject and public key."""
    builder = (
        _base(subject, public_key, root, not_before, lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    if urls.root_crl_url:
        builder = builder.add_extension(_crl_dp(urls.root_crl_url), critical=False)
    access = _aia(urls.ocsp_url)
    if access is not None:
        builder = builder.add_extension(access, critical=False)
    return builder.sign(root_key, signing_hash(root_key))


def issue_code_signing(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    lifetime: timedelta,
    urls: CaUrls,
    identities: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """A leaf for signing images: digitalSignature (critical), EKU codeSigning, CRL DP and AIA.

    ``identities`` go into the SubjectAlternativeName: an ephemeral certificate names its signer
    there (email or URI), the way verifiers match ``--identity``.
    """
    builder = (
        _base(subject, public_key, issuer, not_before, lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    )
    if identities:
        builder = builder.add_extension(x509.SubjectAlternativeName(identities), critical=False)
    if urls.crl_url:
        builder = builder.add_extension(_crl_dp(urls.crl_url), critical=False)
    access = _aia(urls.ocsp_url, urls.ca_issuers_url)
    if access is not None:
        builder = builder.add_extension(access, critical=False)
    return builder.sign(issuer_key, signing_hash(issuer_key))


def reissue(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    old: x509.Certificate,
    *,
    not_before: datetime,
    lifetime: timedelta,
    urls: CaUrls,
) -> x509.Certificate:
    """A new code-signing certificate for the SAME subject and public key as ``old``."""
    require_code_signing(old, path=None)
    public_key = old.public_key()
    return issue_code_signing(
        issuer, issuer_key, public_key, old.subject,  # type: ignore[arg-type]
        not_before=not_before, lifetime=lifetime, urls=urls,
    )


def issue_ocsp_signer(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    lifetime: timedelta,
) -> x509.Certificate:
    """A delegated OCSP responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck)."""
    builder = (
        _base(subject, public_key, issuer, not_before, lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return builder.sign(issuer_key, signing_hash(issuer_key))


def issue_timestamping(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    lifetime: timedelta,
    urls: CaUrls,
) -> x509.Certificate:
    """A time-stamping authority certificate: EKU timeStamping only, critical (RFC 3161 2.3)."""
    builder = (
        _base(subject, public_key, issuer, not_before, lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    )
    if urls.crl_url:  # the TSA's revocation evidence is the issuer's CRL
        builder = builder.add_extension(_crl_dp(urls.crl_url), critical=False)
    return builder.sign(issuer_key, signing_hash(issuer_key))
