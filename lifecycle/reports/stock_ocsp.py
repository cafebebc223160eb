"""Does stock ``singularity``/``apptainer verify --certificate ... --ocsp-verify`` work for an
image set with the chain it uses today, and why not when it does not.

The stock verifier (SingularityCE 4.x, Apptainer) asks the first AIA OCSP URL of every
certificate below the root and fails when one names no responder, or when a response embeds a
delegated responder's certificate (docs/pki.md). Those are facts of the certificates and the
CA's configuration, read here without contacting anyone: a pure function of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from lifecycle.config import OcspResponderMode, Strategy


@dataclass(frozen=True)
class StockOcsp:
    """The answer for one image set: ``works``, and ``reason`` (why not, or what it relies on)."""

    image_set: str
    works: bool
    reason: str


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's AIA OCSP URLs, in order (stock verifiers use the first)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP]


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _label(cert: x509.Certificate, leaf: x509.Certificate) -> str:
    what = "its certificate" if cert is leaf else "the CA certificate"
    return f"{what} {cert.subject.rfc4514_string()}"


def stock_ocsp(image_set: str, strategy: Strategy, chain: Sequence[x509.Certificate],
               responder: OcspResponderMode) -> StockOcsp:
    """``chain``: the set's current leaf first, then its CAs up to the root (empty: no leaf)."""
    if strategy is Strategy.EPHEMERAL:
        return StockOcsp(image_set, False, "ephemeral certificates name no OCSP responder (they "
                         "expire in minutes): stock --ocsp-verify says \"certificate does not "
                         "support OCSP\"; verify through the transparency log instead")
    if not chain:
        return StockOcsp(image_set, False, "the set has no current certificate")
    leaf = chain[0]
    for cert in chain:
        if not _self_signed(cert) and not ocsp_urls(cert):
            hint = ("re-issue it with 'sif-lifecycle ca reissue-intermediate'" if cert is not leaf
                    else "its next re-issue adds it (set [ca] ocsp_url or public_url)")
            return StockOcsp(image_set, False, f"{_label(cert, leaf)} names no OCSP responder: "
                             f"stock --ocsp-verify fails (\"certificate does not support OCSP\"); "
                             f"{hint}")
    if responder is OcspResponderMode.DELEGATED:
        return StockOcsp(image_set, False, "OCSP answers are signed by a delegated responder, "
                         "which stock --ocsp-verify rejects (\"ocsp response is rejected\"); set "
                         "[ca] ocsp_responder = \"issuer\"")
    first = ocsp_urls(leaf)[0]
    return StockOcsp(image_set, True, f"every certificate below the root names an OCSP "
                     f"responder ({first}) and answers are signed by the issuing CA")
