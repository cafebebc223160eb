"""Export a verification bundle from the store: everything an offline cluster needs, signed.

What goes in: root and intermediate certificates, every generation of leaf certificates, the
current CRL of each CA (once), an OCSP response per leaf and intermediate pre-signed now by
their issuing CA's own key (what stock ``--ocsp-verify`` accepts), the signing keys' public
material (PEM files and one armored PGP keyring), the transparency log's verifier key, newest
signed checkpoint and consistency proofs from the checkpoints of earlier exports, a README with
stock ``singularity``/``apptainer`` commands and an ``ecl.toml`` fragment. ``manifest.json``
lists all of it with SHA-256 digests and is signed (DSSE) by the store's bundle key.

``export_to_outbox`` is the hook for the service: call it on a schedule and after changes; it
writes a new timestamped bundle only when the content changed or the newest one is getting stale.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from lifecycle._version import __version__
from lifecycle.bundles import manifest as mf
from lifecycle.bundles.archive import read_bundle, write_bundle
from lifecycle.bundles.ecl import bundle_ecl
from lifecycle.bundles.layout import (
    BUNDLE_KEY,
    ECL,
    INTERMEDIATES,
    LOG_CHECKPOINT,
    LOG_CONSISTENCY,
    LOG_KEY,
    PGP_KEYRING,
    README,
    ROOTS,
    leaf,
)
from lifecycle.bundles.render import render
from lifecycle.bundles.tsa_section import tsa_files
from lifecycle.errors import BundleError, LifecycleError
from lifecycle.integrity import dsse
from lifecycle.integrity.pgp_validity import revocation_at
from lifecycle.model.key_state import KeyState
from lifecycle.pki import crl, keys
from lifecycle.store import audit
from lifecycle.store.ca_service import INTERMEDIATE, LEAF, ROOT, CaService
from lifecycle.store.db import session_scope
from lifecycle.store.key_service import KeyService
from lifecycle.store.models import CertificateRecord, KeyRecord
from lifecycle.tlog import Log

BUNDLE_PURPOSE = "bundle"
EXPORT_ACTION = "bundle.export"
OUTBOX_NAME = re.compile(r"bundle-\d{8}T\d{12}Z\.tar\.gz")
_UNTRUSTED = {KeyState.REVOKED.value, KeyState.COMPROMISED.value}


@dataclass(frozen=True)
class ExportOptions:
    checkpoint_max_age: timedelta = timedelta(days=7)
    """How long a log checkpoint counts as fresh: bounds ``valid_until`` when a log is included."""
    consistency_from: tuple[int, ...] = ()
    """Extra earlier tree sizes to prove consistency from (those of earlier exports are automatic)."""
    proof_history: int = 32
    """How many of the latest earlier exports' log sizes get an automatic consistency proof."""
    ecl_tagname: str = "sif-lifecycle"
    ecl_dirpath: str = ""
    refresh_fraction: float = 0.5
    """Outbox: re-export unchanged content once this fraction of the newest bundle's life is left."""


@dataclass(frozen=True)
class BundleReport:
    path: Path
    manifest: mf.Manifest
    manifest_sha256: str
    bundle_keyid: str
    created_key: bool
    bytes_on_disk: int
    written: bool = True
    sizes: dict[str, int] = field(default_factory=dict)
    """Bytes per file kind (uncompressed)."""

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


@dataclass(frozen=True)
class _Built:
    files: dict[str, bytes]
    manifest: mf.Manifest
    keyid: str
    created_key: bool
    log_size: int | None


def bundle_signing_key(store: KeyService, passphrase: bytes) -> tuple[keys.PrivateKey, bool]:
    """The store's bundle-signing key, created (and activated) on first use; True if new."""
    rows = [r for r in store.list() if r.purpose == BUNDLE_PURPOSE and r.state == KeyState.ACTIVE]
    if rows:
        return store.private_key(rows[-1], passphrase), False
    row = store.generate(keys.KeyAlgorithm.P256, passphrase, purpose=BUNDLE_PURPOSE)
    store.transition(row.fingerprint, KeyState.ACTIVE, "bundle-signing key made on first export")
    return store.private_key(row, passphrase), True


def _selected(row: KeyRecord, images: Collection[str] | None) -> bool:
    """``images``: the key ids (fingerprints, DSSE keyids) an image set is signed with."""
    if row.purpose != "signing":
        return False
    if images is None:
        return True
    wanted = {i.lower().replace(" ", "") for i in images}
    return row.fingerprint.lower() in wanted or row.dsse_keyid.lower() in wanted


def _pem_concat(rows: list[CertificateRecord]) -> bytes:
    return b"".join(r.pem.encode() for r in rows)


def _previous_sizes(ca: CaService, origin: str) -> set[int]:
    with session_scope(ca.engine) as session:
        rows = audit.entries(session, action=EXPORT_ACTION)
    sizes: set[int] = set()
    for row in rows:
        detail = json.loads(row.detail or "{}")
        if detail.get("log_origin") == origin and isinstance(detail.get("log_size"), int):
            sizes.add(detail["log_size"])
    return sizes


class _Collector:
    """Files by bundle path with their kinds, and the times that bound the bundle's freshness."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.kinds: dict[str, str] = {}
        self.limits: dict[str, datetime] = {}

    def add(self, path: str, kind: str, data: bytes) -> None:
        if path in self.files:
            raise BundleError(f"two files would be written to {path!r}")
        self.files[path], self.kinds[path] = data, kind


def _collect_ca(ca: CaService, out: _Collector, images: Collection[str] | None, now: datetime,
                ) -> tuple[list[mf.KeyEntry], list[dict[str, object]]]:
    certs = ca.certificates()
    out.add(ROOTS, "certificate", _pem_concat([c for c in certs if c.role == ROOT]))
    out.add(INTERMEDIATES, "certificate", _pem_concat([c for c in certs if c.role == INTERMEDIATE]))
    for role, der in ca.publish_crls().items():
        parsed = crl.load_crl(der, path=f"{role} CRL")
        path = f"crls/{role}.crl.pem"
        out.add(path, "crl", parsed.public_bytes(serialization.Encoding.PEM))
        if parsed.next_update_utc is not None:
            out.limits[path] = parsed.next_update_utc
    key_rows = [r for r in ca.keys.list() if _selected(r, images)]
    leaves = [c for c in certs if c.role == LEAF and c.key_id in {r.id for r in key_rows}]
    revoked = {c.serial for c in leaves if ca.revocation(c) is not None}
    for cert in leaves:
        out.add(leaf(cert.serial), "certificate", cert.pem.encode())
    # the intermediates' answers too (signed by the root): stock --ocsp-verify checks both
    answered = [*leaves, *(c for c in certs if c.role == INTERMEDIATE)] if leaves else []
    for serial, der in (ca.presigned_ocsp(answered, now) if answered else {}).items():
        path = f"ocsp/{serial}.der"
        out.add(path, "ocsp", der)
        next_update = ocsp.load_der_ocsp_response(der).next_update_utc
        if next_update is not None:
            out.limits[path] = next_update
    entries: list[mf.KeyEntry] = []
    pgp_armor: list[bytes] = []
    compromised = {c.key_id for c in leaves if c.serial in revoked}
    for row in key_rows:
        # A key with a revoked certificate is trusted only through certificates, never bare:
        # `singularity verify --key` would otherwise accept it with no revocation check.
        usable = row.state not in _UNTRUSTED and row.id not in compromised
        file = ""
        if row.kind == "pgp" and (usable or revocation_at(ca.keys.pgp_key(row)) is not None):
            # a revoked PGP key goes too, with its revocation: a site that imported it before
            # learns it is revoked (verifiers then refuse it)
            pgp_armor.append(ca.keys.public_bytes(row.fingerprint))
            file = PGP_KEYRING
        elif usable:
            file = f"keys/{row.fingerprint}.pub"
            out.add(file, "public-key", ca.keys.public_bytes(row.fingerprint, ca.passphrase))
        entries.append(mf.KeyEntry(row.fingerprint, row.kind, row.state, file, tuple(
            leaf(c.serial) for c in leaves if c.key_id == row.id)))
    if pgp_armor:
        out.add(PGP_KEYRING, "pgp-keyring", b"".join(pgp_armor))
    readme_certs = [{"file": leaf(c.serial), "serial": c.serial,
                     "fingerprint": next(r.fingerprint for r in key_rows if r.id == c.key_id),
                     "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
                     "revoked": c.serial in revoked} for c in leaves]
    return entries, readme_certs


def _collect_log(ca: CaService, log: Log, out: _Collector, now: datetime,
                 options: ExportOptions) -> int:
    if log.signer is None:
        raise BundleError("the transparency log was opened without its key",
                          hint="the bundle needs a freshly signed checkpoint; give the log key")
    size = log.size
    out.add(LOG_KEY, "tlog", (log.signer.verifier.verifier_key() + "\n").encode())
    out.add(LOG_CHECKPOINT, "tlog", log.signed_checkpoint(size))
    automatic = sorted(s for s in _previous_sizes(ca, log.origin) if 0 < s < size)
    automatic = automatic[max(0, len(automatic) - options.proof_history):]
    earlier = sorted({*automatic, *(s for s in options.consistency_from if 0 < s < size)})
    proofs = [log.consistency_proof(s, size).to_json() for s in earlier]
    out.add(LOG_CONSISTENCY, "tlog", (json.dumps(proofs, indent=2) + "\n").encode())
    out.limits["checkpoint"] = now + options.checkpoint_max_age
    return size


def build_bundle(ca: CaService, *, log: Log | None = None, images: Collection[str] | None = None,
                 now: datetime | None = None, options: ExportOptions | None = None) -> _Built:
    """Every file of a bundle, in memory, with its signed manifest (nothing is written)."""
    options = options or ExportOptions()
    now = now or ca.clock()
    out = _Collector()
    key_entries, readme_certs = _collect_ca(ca, out, images, now)
    for path, kind, data in tsa_files(ca):  # the local TSA's chain (its CRLs are under crls/)
        out.add(path, kind, data)
    log_size = _collect_log(ca, log, out, now, options) if log is not None else None
    signing_key, created_key = bundle_signing_key(ca.keys, ca.passphrase)
    out.add(BUNDLE_KEY, "bundle-key", keys.public_pem(signing_key.public_key()))
    keyid = dsse.keyid(signing_key.public_key())
    valid_until = min(out.limits.values(), default=now + options.checkpoint_max_age)
    ecl_fprs = [k.fingerprint.upper() for k in key_entries
                if k.kind == "pgp" and k.state == KeyState.ACTIVE.value]
    out.add(ECL, "doc", bundle_ecl(ca.keys, tagname=options.ecl_tagname, dirpath=options.ecl_dirpath))
    listing = [mf.FileEntry(p, out.kinds[p], len(d), mf.sha256_hex(d))
               for p, d in sorted(out.files.items())]
    out.add(README, "doc", render(
        "bundle/README.j2", version=__version__, created=now.isoformat(),
        valid_until=valid_until.isoformat(), bundle_keyid=keyid, certificates=readme_certs,
        pem_keys=[k for k in key_entries if k.kind == "pem" and k.file],
        pgp_keyring=PGP_KEYRING if PGP_KEYRING in out.files else "",
        roots=ROOTS, intermediates=INTERMEDIATES, ecl_fingerprints=ecl_fprs, files=listing))
    manifest = mf.Manifest(
        created=now, valid_until=valid_until,
        files=tuple(mf.FileEntry(p, out.kinds[p], len(d), mf.sha256_hex(d))
                    for p, d in sorted(out.files.items())),
        keys=tuple(key_entries), log_origin=log.origin if log is not None else None,
        limits={k: v.isoformat() for k, v in sorted(out.limits.items())})
    payload = manifest.encode()
    files = dict(out.files)
    files[mf.MANIFEST] = payload
    files[mf.ENVELOPE] = mf.sign_manifest(payload, signing_key)
    return _Built(files, manifest, keyid, created_key, log_size)


def _sizes(built: _Built) -> dict[str, int]:
    sizes: Counter[str] = Counter()
    for entry in built.manifest.files:
        sizes[entry.kind] += entry.size
    sizes["manifest"] += len(built.files[mf.MANIFEST]) + len(built.files[mf.ENVELOPE])
    return dict(sizes)


def _write(ca: CaService, built: _Built, out: Path, log: Log | None) -> BundleReport:
    written = write_bundle(out, built.files, built.manifest.created)
    digest = mf.sha256_hex(built.files[mf.MANIFEST])
    with session_scope(ca.engine) as session:
        audit.record(session, built.manifest.created, EXPORT_ACTION, str(out),
                     manifest_sha256=digest, log_origin=log.origin if log is not None else None,
                     log_size=built.log_size, valid_until=built.manifest.valid_until)
    return BundleReport(out, built.manifest, digest, built.keyid, built.created_key, written,
                        True, _sizes(built))


def export(ca: CaService, out: Path, *, log: Log | None = None,
           images: Collection[str] | None = None, now: datetime | None = None,
           options: ExportOptions | None = None) -> BundleReport:
    """Write a bundle to ``out`` (a directory, or a tar.gz if the name ends so); all or nothing."""
    built = build_bundle(ca, log=log, images=images, now=now, options=options)
    return _write(ca, built, out, log)


def _newest(outbox: Path) -> tuple[Path, mf.Manifest] | None:
    for path in sorted((p for p in outbox.glob("bundle-*.tar.gz") if OUTBOX_NAME.fullmatch(p.name)),
                       reverse=True):
        try:
            return path, mf.Manifest.decode(read_bundle(path)[mf.MANIFEST])
        except (LifecycleError, KeyError):
            continue  # an unreadable bundle never suppresses a fresh export
    return None


def export_to_outbox(ca: CaService, outbox: Path, keep: int, *, log: Log | None = None,
                     images: Collection[str] | None = None, now: datetime | None = None,
                     options: ExportOptions | None = None) -> BundleReport:
    """A new ``bundle-<time>.tar.gz`` in ``outbox`` if anything changed; keeps the newest ``keep``.

    Unchanged content (same certificates, CRLs, keys, checkpoint) is re-exported only once the
    newest bundle has less than ``refresh_fraction`` of its validity left, so an offline site
    always has a fresh bundle to carry without an endless stream of identical ones.
    """
    if keep < 1:
        raise BundleError(f"keep must be at least 1, not {keep}")
    options = options or ExportOptions()
    now = now or ca.clock()
    built = build_bundle(ca, log=log, images=images, now=now, options=options)
    newest = _newest(outbox) if outbox.is_dir() else None
    if newest is not None:
        path, old = newest
        life_left = old.valid_until - now
        if (old.content_digest() == built.manifest.content_digest()
                and life_left > (old.valid_until - old.created) * options.refresh_fraction):
            return BundleReport(path, old, mf.sha256_hex(old.encode()), built.keyid,
                                built.created_key, path.stat().st_size, False, {})
    report = _write(ca, built, outbox / f"bundle-{now.strftime('%Y%m%dT%H%M%S%f')}Z.tar.gz", log)
    bundles = sorted(p for p in outbox.glob("bundle-*.tar.gz") if OUTBOX_NAME.fullmatch(p.name))
    for old_path in bundles[:-keep]:
        old_path.unlink()
    return report
