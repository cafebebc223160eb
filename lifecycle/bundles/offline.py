"""Verify images with nothing but a bundle: no network, no store, no other trust.

Certificates are validated at ``at`` (default now) with the bundle's own CRLs and pre-signed OCSP
responses, never fetching anything; a key with certificates is trusted only through one that
validates, so a revoked or expired certificate cannot be bypassed with its raw public key. Keys
without certificates are trusted as PEM public keys, PGP keys through the bundle's keyring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lifecycle.bundles import layout as ex
from lifecycle.bundles.freshness import StaleOverride
from lifecycle.bundles.selection import image_signers
from lifecycle.bundles.tsa_section import proven_by_keyid
from lifecycle.bundles.verify import OpenedBundle, open_bundle
from lifecycle.errors import CertificateError, CertificateValidationError
from lifecycle.integrity import dsse
from lifecycle.integrity.keys import KeySet, VerifierKey, parse_verifier_keys
from lifecycle.pki.certs import load_certificate, load_certificates
from lifecycle.tlog import NoteVerifier
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verification.longterm import LongTermTrust

PUBLIC_KEY_TYPES = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)


@dataclass(frozen=True)
class BundleKeys:
    bundle: OpenedBundle
    keys: KeySet
    notes: tuple[str, ...]
    """One line per certificate that did not validate, after the bundle's own notes."""


def key_set(bundle: OpenedBundle, at: datetime | None = None,
            signers: set[str] | None = None,
            proven: Mapping[str, datetime] | None = None) -> tuple[KeySet, list[str]]:
    """The verification keys the bundle vouches for at ``at``, and why any were left out.

    ``signers`` (DSSE keyids, from :func:`image_signers`) limits path validation, the costly
    part, to the certificates that can matter for one image. ``proven`` (keyid -> proven
    signing time, from the bundle's ``tsa/`` section) moves that key's validation to that time.
    """
    files = bundle.files
    roots = load_certificates(files[ex.ROOTS], path=ex.ROOTS)
    intermediates = load_certificates(files[ex.INTERMEDIATES], path=ex.INTERMEDIATES)
    crls = [data for _, data in bundle.of_kind("crl")]
    responses = [data for _, data in bundle.of_kind("ocsp")]
    result = KeySet()
    notes: list[str] = []
    from lifecycle.pki.validate import validate_signing_certificate  # pyhanko: only when needed

    for entry in bundle.manifest.keys:
        if entry.kind == "pgp" or entry.file.startswith(ex.HISTORICAL + "/") or any(
                c.startswith(ex.HISTORICAL + "/") for c in entry.certificates):
            continue  # PGP: through the keyring; retired keys are never trusted
        if not entry.certificates:
            if entry.file:
                result.merge(parse_verifier_keys(files[entry.file], Path(entry.file)))
            continue
        leaves = sorted((load_certificate(files[c], path=c) for c in entry.certificates),
                        key=lambda cert: cert.not_valid_after_utc, reverse=True)
        public = leaves[0].public_key()
        if signers is not None and isinstance(public, PUBLIC_KEY_TYPES) and \
                dsse.keyid(public) not in signers:
            continue  # every generation shares the key: none of them signed this image
        failures: list[str] = []
        for leaf in leaves:  # newest first: the one that validates is usually the first
            when = (proven or {}).get(dsse.keyid(public), at) if isinstance(
                public, PUBLIC_KEY_TYPES) else at
            try:
                valid = validate_signing_certificate(
                    leaf, intermediates, roots, at=when, crls=crls, ocsp_responses=responses,
                    fetch_ocsp=False, revocation_mode="hard-fail")
            except (CertificateValidationError, CertificateError) as exc:
                failures.append(f"{leaf.serial_number:x}: {exc}")
                continue
            result.dsse.append(VerifierKey(f"{ex.LEAVES}/{leaf.serial_number:x}.pem",
                                           valid.public_key))
            break
        else:
            notes.append(f"not trusted: key {entry.fingerprint}: no certificate of it validates "
                         f"({'; '.join(failures[:3])})")
    if ex.PGP_KEYRING in files:
        result.merge(parse_verifier_keys(files[ex.PGP_KEYRING], Path(ex.PGP_KEYRING)))
    return result, notes


def longterm_trust(bundle: OpenedBundle, identity: IdentityPolicy) -> LongTermTrust | None:
    """The bundle's log, roots and revocation data for logged (ephemeral) signatures, with
    ``identity`` or else the identities of the bundle's ephemeral sets; None without a log."""
    files = bundle.files
    if ex.LOG_KEY not in files:
        return None
    verifier = NoteVerifier.from_verifier_key(files[ex.LOG_KEY].decode("utf-8", "replace").strip())
    policy = identity if identity != IdentityPolicy() else IdentityPolicy(
        bundle.manifest.identities)
    return LongTermTrust(
        tuple(load_certificates(files[ex.ROOTS], path=ex.ROOTS)), (verifier,), policy,
        tuple(data for _, data in bundle.of_kind("crl")),
        tuple(data for _, data in bundle.of_kind("ocsp")))


def bundle_keys(path: Path, at: datetime | None = None, *, trust_store: Path | None = None,
                allow_stale: StaleOverride | None = None, image: Path | None = None) -> BundleKeys:
    """Open and check the bundle at ``path``, then the keys it vouches for (for ``verify``);
    with ``image``, only the certificates of keys that signed it are validated."""
    bundle = open_bundle(path, trust_store=trust_store, at=at, allow_stale=allow_stale)
    proven = proven_by_keyid(bundle, image) if image is not None else None
    keys, notes = key_set(bundle, at, image_signers(image) if image is not None else None, proven)
    return BundleKeys(bundle, keys, (*bundle.notes, *notes))
