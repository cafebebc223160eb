"""Verify images with nothing but a bundle: no network, no store, no other trust.

Certificates are validated at ``at`` (default now) with the bundle's own CRLs and pre-signed OCSP
responses, never fetching anything; a key with certificates is trusted only through one that
validates, so a revoked or expired certificate cannot be bypassed with its raw public key. Keys
without certificates are trusted as PEM public keys, PGP keys through the bundle's keyring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lifecycle.bundles import layout as ex
from lifecycle.bundles.verify import OpenedBundle, open_bundle
from lifecycle.errors import CertificateError, CertificateValidationError
from lifecycle.integrity.keys import KeySet, VerifierKey, parse_verifier_keys
from lifecycle.pki.certs import load_certificate, load_certificates


@dataclass(frozen=True)
class BundleKeys:
    bundle: OpenedBundle
    keys: KeySet
    notes: tuple[str, ...]
    """One line per certificate that did not validate, after the bundle's own notes."""


def key_set(bundle: OpenedBundle, at: datetime | None = None) -> tuple[KeySet, list[str]]:
    """The verification keys the bundle vouches for at ``at``, and why any were left out."""
    files = bundle.files
    roots = load_certificates(files[ex.ROOTS], path=ex.ROOTS)
    intermediates = load_certificates(files[ex.INTERMEDIATES], path=ex.INTERMEDIATES)
    crls = [data for _, data in bundle.of_kind("crl")]
    responses = [data for _, data in bundle.of_kind("ocsp")]
    result = KeySet()
    notes: list[str] = []
    from lifecycle.pki.validate import validate_signing_certificate  # pyhanko: only when needed

    for entry in bundle.manifest.keys:
        if entry.kind == "pgp":
            continue
        if not entry.certificates:
            if entry.file:
                result.merge(parse_verifier_keys(files[entry.file], Path(entry.file)))
            continue
        for cert_path in entry.certificates:
            leaf = load_certificate(files[cert_path], path=cert_path)
            try:
                valid = validate_signing_certificate(
                    leaf, intermediates, roots, at=at, crls=crls, ocsp_responses=responses,
                    fetch_ocsp=False, revocation_mode="hard-fail")
            except (CertificateValidationError, CertificateError) as exc:
                notes.append(f"not trusted: {cert_path}: {exc}")
                continue
            result.dsse.append(VerifierKey(cert_path, valid.public_key))
            break
    if ex.PGP_KEYRING in files:
        result.merge(parse_verifier_keys(files[ex.PGP_KEYRING], Path(ex.PGP_KEYRING)))
    return result, notes


def bundle_keys(path: Path, at: datetime | None = None, *, trust_store: Path | None = None,
                strict: bool = False) -> BundleKeys:
    """Open and check the bundle at ``path``, then the keys it vouches for (for ``verify``)."""
    bundle = open_bundle(path, trust_store=trust_store, at=at, strict=strict)
    keys, notes = key_set(bundle, at)
    return BundleKeys(bundle, keys, (*bundle.notes, *notes))
