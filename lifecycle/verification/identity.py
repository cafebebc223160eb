"""Who signed: the identity policy a certificate's signer must satisfy.

Kept apart from :mod:`.longterm` (which pulls in the log and path validation) so that building
trust material costs nothing until it is used.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from lifecycle.errors import VerificationError

if TYPE_CHECKING:
    from cryptography import x509

SHORT_LIVED_SECONDS = 24 * 60 * 60
"""A certificate living at most this long is treated as ephemeral, whatever else it says."""


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """The email addresses and URIs in the certificate's SubjectAlternativeName."""
    from cryptography import x509
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in (*san.get_values_for_type(x509.RFC822Name),
                             *san.get_values_for_type(x509.UniformResourceIdentifier))]


def issuer_names(cert: x509.Certificate) -> list[str]:
    """The issuer as RFC 4514 text and as its common name: either may be pinned."""
    from cryptography.x509.oid import NameOID
    names = [cert.issuer.rfc4514_string()]
    names += [str(a.value) for a in cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


class IdentityPolicy(NamedTuple):
    """Accepted signers: exact identities, full-match regular expressions, exact issuers.

    Empty lists accept anything; the CLI demands at least one identity for ephemeral
    signatures, since otherwise anyone the CA issued for would be accepted.
    """

    identities: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    issuers: tuple[str, ...] = ()

    @property
    def restricts_identity(self) -> bool:
        return bool(self.identities or self.patterns)

    def check(self, cert: x509.Certificate) -> str:
        """The matching identity ('' when none is required); VerificationError otherwise."""
        names = certificate_identities(cert)
        if self.issuers and not set(issuer_names(cert)) & set(self.issuers):
            raise VerificationError(
                f"certificate issuer {cert.issuer.rfc4514_string()!r} is not an accepted issuer")
        if not self.restricts_identity:
            return names[0] if names else ""
        for name in names:
            if name in self.identities or any(re.fullmatch(p, name) for p in self.patterns):
                return name
        raise VerificationError(
            f"certificate identity {', '.join(names) or '(none)'} does not match the "
            "accepted identities", hint="check --identity")


def requires_identity(cert: x509.Certificate) -> bool:
    """Whether accepting ``cert`` needs a restricting identity policy, judged on the signed
    certificate alone (never on the unsigned DSSE extension that carried it).

    A certificate that names a signer (SAN email or URI) is accepted only for a named signer:
    a CA that puts requested identities into certificates (the ephemeral CA does) would
    otherwise vouch for anyone. A short-lived certificate is ephemeral by nature, so it too.
    """
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return bool(certificate_identities(cert)) or lifetime.total_seconds() <= SHORT_LIVED_SECONDS
