"""Open a bundle offline: check it is genuine, complete, fresh and consistent with the past.

Order matters: the manifest signature is checked against a PINNED key before anything in the
bundle is believed; then every file's size and digest, no file missing and none extra; then
expiry (``valid_until``) and the bundle version against the highest imported before
(:mod:`lifecycle.bundles.freshness`); then the log's checkpoint against the one remembered from
earlier bundles (a consistency proof must connect them, or the log forked). The trust store is
updated only when all of that passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lifecycle.bundles import layout as ex
from lifecycle.bundles import manifest as mf
from lifecycle.bundles import trust
from lifecycle.bundles.archive import read_bundle
from lifecycle.bundles.freshness import StaleOverride, check_expiry, check_version
from lifecycle.clock import utc_now
from lifecycle.errors import BundleVerificationError, LifecycleError, LogProofError
from lifecycle.files import read_key
from lifecycle.integrity import dsse
from lifecycle.pki import keys
from lifecycle.tlog import Checkpoint, ConsistencyProof, NoteVerifier, check_consistency, open_checkpoint


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose signature, digests and log consistency checked out."""

    path: Path
    manifest: mf.Manifest
    files: dict[str, bytes]
    keyid: str
    at: datetime
    stale: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What the user must read: first-use pinning, staleness, log status."""

    def of_kind(self, kind: str) -> list[tuple[str, bytes]]:
        return [(f.path, self.files[f.path]) for f in self.manifest.files if f.kind == kind]


def _reject(message: str, path: Path, hint: str = "") -> BundleVerificationError:
    return BundleVerificationError(message, path=path, hint=hint)


def _public_key(data: bytes, where: str) -> dsse.PublicKey:
    try:
        return keys.load_public_key(data, path=where)
    except LifecycleError as exc:
        raise BundleVerificationError(f"unusable bundle key: {exc.message}", path=where) from None


def _pick_key(state: trust.TrustState, signed: mf.SignedManifest, files: dict[str, bytes],
              trust_key: Path | None, path: Path, now: datetime) -> tuple[dsse.PublicKey, str]:
    """The key the manifest must verify with, and a note when it was pinned just now."""
    if trust_key is not None:
        key = keys.load_public_key(read_key(trust_key), path=trust_key)
        kid = dsse.keyid(key)
        if kid not in state.keys:
            state.keys[kid] = {"public_key": keys.public_pem(key).decode(),
                               "pinned_at": now.isoformat(), "how": "explicit"}
            return key, f"pinned bundle key {kid} (explicitly, from {trust_key})"
        return key, ""
    pinned = state.keys.get(signed.keyid)
    if pinned is not None:
        return _public_key(pinned["public_key"].encode(), "trust store"), ""
    if state.keys:
        raise _reject(
            f"the manifest is signed by key {signed.keyid}, but this trust store pins "
            f"{', '.join(sorted(state.keys))}", path,
            hint="a bundle from another source or a replaced key: pin it with --trust-key only "
                 "after checking its keyid out of band")
    if ex.BUNDLE_KEY not in files:
        raise _reject(f"the bundle has no {ex.BUNDLE_KEY} to pin", path)
    key = _public_key(files[ex.BUNDLE_KEY], ex.BUNDLE_KEY)
    kid = dsse.keyid(key)
    state.keys[kid] = {"public_key": keys.public_pem(key).decode(), "pinned_at": now.isoformat(),
                       "how": "first use"}
    return key, (f"WARNING: TRUST ON FIRST USE: pinned bundle key {kid}; compare it with the "
                 "key id the exporting site published before relying on this bundle")


def _check_files(manifest: mf.Manifest, files: dict[str, bytes], path: Path) -> None:
    listed = {f.path for f in manifest.files}
    missing = sorted(listed - set(files))
    extra = sorted(set(files) - listed)
    if missing:
        raise _reject(f"files listed in the manifest are missing: {', '.join(missing)}", path)
    if extra:
        raise _reject(f"files not listed in the manifest were added: {', '.join(extra)}", path,
                      hint="remove them, or get an untampered copy of the bundle")
    for entry in manifest.files:
        data = files[entry.path]
        if len(data) != entry.size or mf.sha256_hex(data) != entry.sha256:
            raise _reject(f"{entry.path} does not match its manifest digest (changed after "
                          "the bundle was signed)", path)


def _find_proof(data: bytes, old: int, new: int) -> ConsistencyProof | None:
    try:
        docs = json.loads(data)
        proofs = [ConsistencyProof.from_json(d) for d in docs]
    except (ValueError, TypeError, LogProofError) as exc:
        raise BundleVerificationError(f"unreadable consistency proofs ({exc})",
                                      path=ex.LOG_CONSISTENCY) from None
    return next((p for p in proofs if (p.old_size, p.new_size) == (old, new)), None)


def _check_log(state: trust.TrustState, manifest: mf.Manifest, files: dict[str, bytes],
               path: Path) -> str:
    """Compare the bundle's checkpoint with the remembered one; remember the newer."""
    if ex.LOG_CHECKPOINT not in files:
        return "no transparency log in this bundle"
    verifier_key = files[ex.LOG_KEY].decode().strip()
    verifier = NoteVerifier.from_verifier_key(verifier_key)
    new = open_checkpoint(files[ex.LOG_CHECKPOINT], [verifier], manifest.log_origin)
    known = state.logs.get(new.origin)
    record = {"verifier_key": verifier_key, "checkpoint": files[ex.LOG_CHECKPOINT].decode()}
    if known is None:
        state.logs[new.origin] = record
        return f"log {new.origin}: size {new.size}, first checkpoint remembered"
    if known["verifier_key"] != verifier_key:
        raise _reject(f"log {new.origin} is signed by another key than in earlier bundles", path,
                      hint="the log key changed; treat this as a different log only if "
                           "the exporting site announced it")
    old: Checkpoint = open_checkpoint(known["checkpoint"].encode(), [verifier], new.origin)
    if new.size < old.size:
        raise _reject(f"the bundle is older than one imported before (log {new.origin} size "
                      f"{new.size} < {old.size})", path, hint="carry the newest bundle")
    if new.size == old.size:
        check_consistency(old, new, ConsistencyProof(old.size, new.size, ()))
        return f"log {new.origin}: size {new.size}, same checkpoint as before"
    proof = _find_proof(files.get(ex.LOG_CONSISTENCY, b"[]"), old.size, new.size)
    if proof is None:
        raise _reject(f"the bundle cannot prove log {new.origin} grew from size {old.size} to "
                      f"{new.size} (no consistency proof)", path,
                      hint=f"re-export with --consistency-from {old.size}")
    check_consistency(old, new, proof)
    state.logs[new.origin] = record
    return f"log {new.origin}: grew from size {old.size} to {new.size}, consistent"


def open_bundle(path: Path, *, trust_store: Path | None = None, trust_key: Path | None = None,
                at: datetime | None = None,
                allow_stale: StaleOverride | None = None) -> OpenedBundle:
    """Verify the bundle at ``path`` and import it into the trust store; raise if it fails.

    An expired bundle (``valid_until`` before ``at``, default now) is refused unless
    ``allow_stale`` gives a reason (then ``stale`` is set and ``notes`` warns); an older version
    than one imported before is always refused.
    """
    store = trust_store or trust.default_trust_store()
    now = utc_now()
    when = at or now
    files = read_bundle(path)
    for name in (mf.ENVELOPE, mf.MANIFEST):
        if name not in files:
            raise _reject(f"{name} is missing: not a bundle, or an incomplete copy", path)
    signed = mf.parse_envelope(files.pop(mf.ENVELOPE))
    if signed.payload != files.pop(mf.MANIFEST):
        raise _reject(f"{mf.MANIFEST} differs from the signed manifest", path)
    state = trust.load(store)
    key, pin_note = _pick_key(state, signed, files, trust_key, path, now)
    mf.check_signature(signed, key)
    manifest = mf.Manifest.decode(signed.payload)
    _check_files(manifest, files, path)
    stale_note = check_expiry(manifest, when, allow_stale, path)
    notes = [n for n in (pin_note, stale_note) if n]
    notes.append(check_version(state, signed.keyid, manifest, mf.sha256_hex(signed.payload), path))
    notes.append(_check_log(state, manifest, files, path))
    trust.save(store, state)
    return OpenedBundle(path, manifest, files, signed.keyid, when, bool(stale_note), tuple(notes))
