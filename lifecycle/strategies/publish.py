"""Publish an image set's trust material to a directory relying parties (or a sneakernet) copy.

Layout: ``root.pem``, ``intermediate.pem``, ``chain.pem`` (intermediate then root), ``crl/root.crl``
and ``crl/intermediate.crl`` (DER), ``tsa/roots.pem`` and ``tsa/chain.pem`` (the local TSA's
certificates, when it has one), ``keys/<fingerprint>.pub`` and ``certificates/<fingerprint>.pem``
(the newest certificate) for every pending, active or retiring key of the set, and
``manifest.json`` last. Every file is written atomically, so a reader never sees half a file;
files of keys that left the set are removed once the new ones are in place.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from lifecycle.bundles.tsa_section import tsa_files
from lifecycle.config import ImageSetPolicy
from lifecycle.inventory.fleet import MANIFEST, load_trust
from lifecycle.model.fleet import LIVE
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.files import write_atomic
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService
from lifecycle.store.queries import certificate_pems, latest_crl


def _write(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds ``data`` (mirrors see no churn)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data, mode=0o644)


def publish_set(policy: ImageSetPolicy, ca: CaService, now: datetime) -> Path | None:
    """Write ``policy``'s trust material to its publish directory; returns it (None: none set)."""
    directory = policy.publish_directory
    if directory is None:
        return None
    with ca.engine.connect() as conn:
        trust = load_trust(conn)
    pems = certificate_pems(ca.engine)
    latest = {role: latest_crl(ca.engine, role) for role in (ROOT, INTERMEDIATE)}
    root, inter = ca.certificate(ROOT), ca.certificate(INTERMEDIATE)
    _write(directory / "root.pem", certificate_pem(root))
    _write(directory / "intermediate.pem", certificate_pem(inter))
    _write(directory / "chain.pem", certificate_pem(inter) + certificate_pem(root))
    for role, der in latest.items():
        if der is not None:
            _write(directory / "crl" / f"{role}.crl", der)
    for path, _kind, data in tsa_files(ca):  # the local TSA's root and chain, as in bundles
        _write(directory / path, data)
    keys = [k for k in trust.keys if k.image_set == policy.name and k.state in LIVE]
    entries = []
    for key in keys:
        current = max((c for c in trust.certificates if c.key_fingerprint == key.fingerprint
                       and not c.revoked and not c.superseded and c.not_after > now),
                      key=lambda c: (c.not_after, c.serial), default=None)
        public = ca.keys.public_bytes(key.fingerprint, ca.passphrase)
        _write(directory / "keys" / f"{key.fingerprint}.pub", public)
        if current is not None:
            _write(directory / "certificates" / f"{key.fingerprint}.pem",
                   pems[current.serial].encode())
        entries.append({"fingerprint": key.fingerprint, "dsse_keyid": key.dsse_keyid,
                        "state": key.state.value,
                        "certificate": current.serial if current is not None else None,
                        "not_after": current.not_after.isoformat() if current else None})
    wanted = {k.fingerprint for k in keys}
    for sub, suffix in (("keys", ".pub"), ("certificates", ".pem")):
        for stale in (directory / sub).glob(f"*{suffix}"):
            if stale.name.removesuffix(suffix) not in wanted:
                stale.unlink()
    manifest = {"image_set": policy.name, "revision": trust.revision,
                "published_at": now.isoformat(), "keys": entries}
    _write(directory / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    return directory
