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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
    historical,
    leaf,
)
from lifecycle.bundles.render import render
from lifecycle.bundles.tsa_section import tsa_files
from lifecycle.config import Config, Strategy
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
HISTORICAL_KEY = "historical-key"
HISTORICAL_CERTIFICATE = "historical-certificate"
"""Kinds of the historical section: kept for the record, never trusted by ``verify --bundle``."""


DEFAULT_VALIDITY = timedelta(days=7)
"""Long enough to carry media between sites; ``[bundles] validity_days`` changes it."""


@dataclass(frozen=True)
class ExportOptions:
    validity: timedelta = DEFAULT_VALIDITY
    """``valid_until`` is ``created`` plus this; the CRLs and OCSP responses inside cover it (an
    export that cannot honour it fails)."""
    checkpoint_max_age: timedelta | None = None
    """How long a log checkpoint counts as fresh (default: ``validity``)."""
    consistency_from: tuple[int, ...] = ()
    """Extra earlier tree sizes to prove consistency from (those of earlier exports are automatic)."""
    proof_history: int = 32
    """How many of the latest earlier exports' log sizes get an automatic consistency proof."""
    image_sets: tuple[mf.ImageSetEntry, ...] = ()
    """The configured image sets (:func:`options_for`): ephemeral sets' identities go in."""
    ecl_tagname: str = "sif-lifecycle"
    ecl_dirpath: str = ""
    refresh_fraction: float = 0.5
    """Outbox: re-export unchanged content once this fraction of the newest bundle's life is left."""


def options_for(config: Config, **overrides: Any) -> ExportOptions:
    """Export options from the configuration: ``[bundles]`` validity and the image sets."""
    sets = tuple(mf.ImageSetEntry(p.name, p.strategy.value,
                                  p.identity if p.strategy is Strategy.EPHEMERAL else "")
                 for p in config.policies.image_sets)
    return replace(ExportOptions(validity=config.bundles.validity, image_sets=sets), **overrides)


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
    warnings: tuple[str, ...] = ()

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
    warnings: tuple[str, ...] = ()


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


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _pem_concat(rows: list[CertificateRecord]) -> bytes:
    return b"".join(r.pem.encode() for r in rows)


def _check_promise(limits: dict[str, datetime], valid_until: datetime, validity: timedelta) -> None:
    """Refuse to sign a ``valid_until`` that some content stops covering before."""
    short = sorted((at, what) for what, at in limits.items() if at < valid_until)
    if short:
        at, what = short[0]
        raise BundleError(
            f"cannot promise a validity of {_days(validity)}: {what} is valid only until "
            f"{at.isoformat()}",
            hint="lower [bundles] validity_days (or --validity-days), or lengthen what ends "
                 "first ([ca] crl_lifetime_days, --checkpoint-max-age, the CA's certificates)")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day{'s' if days != 1 else ''}"


def _exports(ca: CaService) -> list[dict[str, Any]]:
    with session_scope(ca.engine) as session:
        rows = audit.entries(session, action=EXPORT_ACTION)
    return [json.loads(row.detail or "{}") for row in rows]


def next_version(ca: CaService, keyid: str) -> int:
    """One more than the highest version exported under bundle key ``keyid`` (1 for the first)."""
    versions = [d["version"] for d in _exports(ca)
                if d.get("bundle_keyid") == keyid and isinstance(d.get("version"), int)]
    return max(versions, default=0) + 1


def _previous_sizes(ca: CaService, origin: str) -> set[int]:
    return {d["log_size"] for d in _exports(ca)
            if d.get("log_origin") == origin and isinstance(d.get("log_size"), int)}


class _Collector:
    """Files by bundle path with their kinds, and the times that bound the bundle's freshness."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.kinds: dict[str, str] = {}
        self.limits: dict[str, datetime] = {}
        self.revoked: list[str] = []
        self.warnings: dict[str, None] = {}
        """What the exporting user must read (ordered, each once)."""

    def add(self, path: str, kind: str, data: bytes) -> None:
        if path in self.files:
            raise BundleError(f"two files would be written to {path!r}")
        self.files[path], self.kinds[path] = data, kind


def _collect_ca(ca: CaService, out: _Collector, images: Collection[str] | None, now: datetime,
                valid_until: datetime) -> tuple[list[mf.KeyEntry], list[dict[str, object]]]:
    certs = ca.certificates()
    out.add(ROOTS, "certificate", _pem_concat([c for c in certs if c.role == ROOT]))
    out.add(INTERMEDIATES, "certificate", _pem_concat([c for c in certs if c.role == INTERMEDIATE]))
    for role in (ROOT, INTERMEDIATE):
        parsed = crl.load_crl(ca.publish_crl(role, now=now), path=f"{role} CRL")
        if parsed.next_update_utc is not None and parsed.next_update_utc < valid_until:
            parsed = crl.load_crl(ca.publish_crl(role, force=True, now=now), path=f"{role} CRL")
        path = f"crls/{role}.crl.pem"
        out.add(path, "crl", parsed.public_bytes(serialization.Encoding.PEM))
        out.revoked += [f"{path}:{entry.serial_number:x}" for entry in parsed]
        if parsed.next_update_utc is not None:
            out.limits[path] = parsed.next_update_utc
    key_rows = [r for r in ca.keys.list() if _selected(r, images)]
    leaves = [c for c in certs if c.role == LEAF and c.key_id in {r.id for r in key_rows}]
    revoked = {c.serial for c in leaves if ca.revocation(c) is not None}
    retired = {r.id for r in key_rows if r.state == KeyState.RETIRED}
    where = {c.serial: historical(leaf(c.serial)) if c.key_id in retired else leaf(c.serial)
             for c in leaves}
    for cert in leaves:
        out.add(where[cert.serial], HISTORICAL_CERTIFICATE if cert.key_id in retired
                else "certificate", cert.pem.encode())
    # the intermediates' answers too (signed by the root): stock --ocsp-verify checks both
    answered = [*leaves, *(c for c in certs if c.role == INTERMEDIATE)] if leaves else []
    presigned = ca.presigned_ocsp(answered, now, validity=valid_until - now) if answered else {}
    for serial, der in presigned.items():
        response = ocsp.load_der_ocsp_response(der)
        ends = min((c.not_valid_after_utc for c in response.certificates), default=valid_until)
        if ends < valid_until:  # unverifiable before the bundle expires: promise nothing
            out.warnings[f"OCSP responses left out: the OCSP responder certificate is valid "
                         f"only until {ends.isoformat()}; the CRLs carry revocation"] = None
            continue
        path = f"ocsp/{serial}.der"
        out.add(path, "ocsp", der)
        if response.next_update_utc is not None:
            out.limits[path] = response.next_update_utc
    entries: list[mf.KeyEntry] = []
    pgp_armor: list[bytes] = []
    compromised = {c.key_id for c in leaves if c.serial in revoked}
    for row in key_rows:
        # A key with a revoked certificate is trusted only through certificates, never bare:
        # `singularity verify --key` would otherwise accept it with no revocation check.
        # A retired key signs nothing any more: kept for the record under historical/, never
        # offered to verify with (a signature made after retirement is not genuine).
        usable = row.state not in _UNTRUSTED and row.id not in compromised
        file = ""
        if usable and row.id in retired:
            file = historical(f"keys/{row.fingerprint}.{'asc' if row.kind == 'pgp' else 'pub'}")
            out.add(file, HISTORICAL_KEY, ca.keys.public_bytes(
                row.fingerprint, None if row.kind == "pgp" else ca.passphrase))
        elif row.kind == "pgp" and (usable or revocation_at(ca.keys.pgp_key(row)) is not None):
            # a revoked PGP key goes too, with its revocation: a site that imported it before
            # learns it is revoked (verifiers then refuse it)
            pgp_armor.append(ca.keys.public_bytes(row.fingerprint))
            file = PGP_KEYRING
        elif usable:
            file = f"keys/{row.fingerprint}.pub"
            out.add(file, "public-key", ca.keys.public_bytes(row.fingerprint, ca.passphrase))
        entries.append(mf.KeyEntry(row.fingerprint, row.kind, row.state, file, tuple(
            where[c.serial] for c in leaves if c.key_id == row.id)))
    if pgp_armor:
        out.add(PGP_KEYRING, "pgp-keyring", b"".join(pgp_armor))
    readme_certs = [{"file": where[c.serial], "serial": c.serial,
                     "fingerprint": next(r.fingerprint for r in key_rows if r.id == c.key_id),
                     "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
                     "revoked": c.serial in revoked, "historical": c.key_id in retired,
                     "current": _aware(c.not_before) <= now <= _aware(c.not_after)
                     and c.serial not in revoked} for c in leaves]
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
    out.limits["checkpoint"] = now + (options.checkpoint_max_age or options.validity)
    return size


def build_bundle(ca: CaService, *, log: Log | None = None, images: Collection[str] | None = None,
                 now: datetime | None = None, options: ExportOptions | None = None) -> _Built:
    """Every file of a bundle, in memory, with its signed manifest (nothing is written)."""
    options = options or ExportOptions()
    now = now or ca.clock()
    valid_until = (now + options.validity).replace(microsecond=0)  # as CRLs and OCSP encode it
    out = _Collector()
    key_entries, readme_certs = _collect_ca(ca, out, images, now, valid_until)
    for path, kind, data in tsa_files(ca):  # the local TSA's chain (its CRLs are under crls/)
        out.add(path, kind, data)
    log_size = _collect_log(ca, log, out, now, options) if log is not None else None
    _check_promise(out.limits, valid_until, options.validity)
    signing_key, created_key = bundle_signing_key(ca.keys, ca.passphrase)
    out.add(BUNDLE_KEY, "bundle-key", keys.public_pem(signing_key.public_key()))
    keyid = dsse.keyid(signing_key.public_key())
    ecl_fprs = [k.fingerprint.upper() for k in key_entries
                if k.kind == "pgp" and k.state == KeyState.ACTIVE.value]
    out.add(ECL, "doc", bundle_ecl(ca.keys, tagname=options.ecl_tagname, dirpath=options.ecl_dirpath))
    listing = [mf.FileEntry(p, out.kinds[p], len(d), mf.sha256_hex(d))
               for p, d in sorted(out.files.items())]
    pem_keys = [k for k in key_entries if k.kind == "pem" and k.file.startswith("keys/")]
    out.add(README, "doc", render(
        "bundle/README.j2", version=__version__, created=now.isoformat(),
        valid_until=valid_until.isoformat(), bundle_keyid=keyid, certificates=readme_certs,
        pem_keys=pem_keys, sets=_readme_sets(ca, options.image_sets, readme_certs, key_entries),
        pgp_keyring=PGP_KEYRING if PGP_KEYRING in out.files else "",
        roots=ROOTS, intermediates=INTERMEDIATES, ecl_fingerprints=ecl_fprs, files=listing,
        ephemeral=[e for e in options.image_sets if e.identity], has_log=log is not None,
        file_count=len(listing) + 3))  # + README, manifest.json, manifest.dsse.json
    manifest = mf.Manifest(
        created=now, valid_until=valid_until, version=next_version(ca, keyid),
        revoked=tuple(sorted(out.revoked)),
        files=tuple(mf.FileEntry(p, out.kinds[p], len(d), mf.sha256_hex(d))
                    for p, d in sorted(out.files.items())),
        image_sets=options.image_sets,
        keys=tuple(key_entries), log_origin=log.origin if log is not None else None,
        limits={k: v.isoformat() for k, v in sorted(out.limits.items())})
    payload = manifest.encode()
    files = dict(out.files)
    files[mf.MANIFEST] = payload
    files[mf.ENVELOPE] = mf.sign_manifest(payload, signing_key)
    return _Built(files, manifest, keyid, created_key, log_size, tuple(out.warnings))


def _readme_sets(ca: CaService, sets: tuple[mf.ImageSetEntry, ...],
                 certificates: list[dict[str, object]], key_entries: list[mf.KeyEntry],
                 ) -> list[dict[str, object]]:
    """Per configured image set: its current certificates, bare PEM keys and PGP keys (the
    README's commands per set); a last entry (name "") holds the keys of no configured set."""
    from lifecycle.inventory.fleet import load_set_keys

    with ca.engine.connect() as conn:
        members = {s.name: {k.fingerprint for k in load_set_keys(conn, s.name)} for s in sets}
    claimed = set().union(*members.values()) if members else set()
    groups = [(s.name, s.strategy, s.identity, members[s.name]) for s in sets]
    entries = {k.fingerprint for k in key_entries}
    groups.append(("", "", "", entries - claimed))
    out: list[dict[str, object]] = []
    for name, strategy, identity, fingerprints in groups:
        out.append({
            "name": name, "strategy": strategy, "identity": identity,
            "certificates": [c for c in certificates if c["fingerprint"] in fingerprints
                             and c["current"] and not c["historical"]],
            "pem_keys": [k for k in key_entries if k.fingerprint in fingerprints
                         and k.kind == "pem" and k.file.startswith("keys/")],
            "pgp": any(k.kind == "pgp" and k.file == PGP_KEYRING for k in key_entries
                       if k.fingerprint in fingerprints)})
    return [g for g in out if g["name"] or g["certificates"] or g["pem_keys"] or g["pgp"]]


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
                     bundle_keyid=built.keyid, version=built.manifest.version,
                     log_size=built.log_size, valid_until=built.manifest.valid_until)
    return BundleReport(out, built.manifest, digest, built.keyid, built.created_key, written,
                        True, _sizes(built), built.warnings)


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


def newest_bundle(outbox: Path) -> tuple[Path, mf.Manifest] | None:
    """The newest readable bundle in ``outbox`` and its manifest (None: none, or no outbox)."""
    return _newest(outbox) if outbox.is_dir() else None
