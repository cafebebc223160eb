"""Handlers that change images: re-sign with the active key, drop a retired key's signature, purge
a compromised key's signature. Each reads the image once, checks, then writes crash-safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lifecycle.config import ImageSetPolicy
from lifecycle.errors import ActionError, TamperedImageError
from lifecycle.integrity.keys import PgpSigningKey, VerifierKey
from lifecycle.integrity.pgp_objects import remove_pgp_signatures
from lifecycle.integrity.sign import (
    DsseSigner,
    PgpSigner,
    SignOptions,
    remove_signatures,
    sign_image,
)
from lifecycle.inventory.inspect import ImageInfo, inspect_image
from lifecycle.inventory.scan import image_row, mark_tampered
from lifecycle.inventory.scan import reinventory as rescan_image
from lifecycle.model.fleet import LIVE, Action, ActionKind, KeyInfo, Trust, short
from lifecycle.model.status import ImageStatus
from lifecycle.pki import keys as pki_keys
from lifecycle.strategies.context import (
    ApplyContext,
    Handler,
    NothingToDoError,
    active_key,
    keys_in,
    policy_of,
    set_keys_of,
)
from lifecycle.strategies.handlers.checks import _verify_with
from lifecycle.strategies.handlers.proven import (
    compromised_since,
    proven_before,
    spared,
    spared_message,
)
from lifecycle.timestamp.tokens import stamping


def _verifier(ctx: ApplyContext, key: KeyInfo) -> VerifierKey | bytes:
    """A PEM key's public key, or a PGP key's armored public key (as a keyserver serves it)."""
    if key.pgp:
        return ctx.ca.keys.public_bytes(key.fingerprint)
    public = pki_keys.load_public_key(ctx.ca.keys.public_bytes(key.fingerprint, ctx.passphrase),
                                      path=f"key {key.fingerprint}")
    return VerifierKey(f"key {short(key.fingerprint)}", public)


def _signer(ctx: ApplyContext, key: KeyInfo, now: datetime) -> DsseSigner | PgpSigner:
    """The key's signer; with ``[timestamp]``, each DSSE signature it makes gets its tokens."""
    row = ctx.ca.keys.get(key.fingerprint)
    if key.pgp:
        return PgpSigner(PgpSigningKey(ctx.ca.keys.pgp_key(row), ctx.passphrase,
                                       f"key {key.fingerprint}"))
    private = ctx.ca.keys.private_key(row, ctx.passphrase)
    stamp = stamping(ctx.stamper_at(now)) if ctx.stamper_at is not None else None
    return DsseSigner((private,), None, stamp)


def _remove(path: str, key: KeyInfo) -> str:
    """Drop ``key``'s signatures: its PGP objects, or its entries in the DSSE envelopes."""
    if key.pgp:
        return f"dropped PGP signature objects {remove_pgp_signatures(path, key.fingerprint)}"
    return f"dropped {key.dsse_keyid} from {len(remove_signatures(path, {key.dsse_keyid}))} " \
        "envelope(s)"


def refuse(ctx: ApplyContext, image_id: int, path: str, now: datetime, reason: str) -> None:
    """Mark the image tampered, leave an event for the alert, and stop the action."""
    mark_tampered(ctx.engine, image_id, now, reason)
    raise TamperedImageError(f"refused: {reason}; the image is marked tampered", path=path,
                             hint="inspect it; re-track it once it is restored")


def reinventory(ctx: ApplyContext, image_id: int, path: str, now: datetime) -> None:
    rescan_image(ctx.engine, image_id, path, now)


def _in_every_envelope(info: ImageInfo, key: KeyInfo) -> bool:
    """Signed by ``key`` in every DSSE envelope (a crash can leave an old envelope beside
    the merged one until the retry replaces both); a PGP key: in every signed group."""
    if key.pgp:
        groups = {s.group for s in info.signatures}
        return bool(groups) and groups == {s.group for s in info.signatures
                                           if key.signer_id in s.signers}
    envelopes = [s for s in info.signatures if s.format == "dsse"]
    return bool(envelopes) and all(key.dsse_keyid in s.signers for s in envelopes)


def present_image(ctx: ApplyContext, path: str) -> tuple[int, dict[str, str]]:
    """(id, digests as first seen) of a tracked, present image; skips any other status."""
    row = image_row(ctx.engine, path)
    if row is None:
        raise ActionError("image is not in the inventory", path=path,
                          hint="run 'sif-lifecycle track' or 'scan' first")
    image_id, status, digests = row
    if status != ImageStatus.PRESENT:
        raise NothingToDoError(f"image is {status}; it is not changed automatically")
    if not Path(path).is_file():
        raise ActionError("image file is missing", path=path, hint="run 'sif-lifecycle scan'")
    return image_id, digests


@dataclass(frozen=True)
class _ImageWork:
    """What every per-image action of a set starts from: the image, its set's keys, the key the
    action names (its ``fingerprint``) and the set's active key."""

    policy: ImageSetPolicy
    path: str
    image_id: int
    first_digests: dict[str, str]
    trust: Trust
    named_fingerprint: str
    named: KeyInfo | None
    active: KeyInfo | None


def _image_work(action: Action, ctx: ApplyContext) -> _ImageWork:
    policy = policy_of(ctx, action)
    image_id, first_digests = present_image(ctx, action.subject)
    trust = set_keys_of(ctx, policy.name)
    fingerprint = action.fingerprint
    named = next((x for x in trust.keys if x.fingerprint == fingerprint), None)
    return _ImageWork(policy, action.subject, image_id, first_digests, trust, fingerprint, named,
                      active_key(trust, policy.name))


def _resign(action: Action, ctx: ApplyContext, now: datetime) -> str:
    work = _image_work(action, ctx)
    policy, path, image_id, trust, active = work.policy, work.path, work.image_id, work.trust, work.active
    key_fpr = work.named_fingerprint
    if active is None or active.fingerprint != key_fpr:
        raise NothingToDoError(f"key {short(key_fpr)} is no longer the active key")
    info = inspect_image(path)
    if _in_every_envelope(info, active):
        reinventory(ctx, image_id, path, now)
        raise NothingToDoError("the image already carries the active key's signature")
    kept = spared(ctx, path, {k for sig in info.signatures for k in sig.extended}, trust.keys,
                  now)
    if kept:  # its pre-compromise signature stands; this tool verifies it by proven time
        raise NothingToDoError(kept)
    trusted = [_verifier(ctx, key) for key in keys_in(trust, policy.name, *LIVE)]
    problem = _verify_with(path, trusted)
    if problem:
        refuse(ctx, image_id, path, now, f"its current signatures do not verify with the "
                f"trusted keys of {policy.name} ({problem})")
    sign_image(path, _signer(ctx, active, now), SignOptions(signing_time=now))
    reinventory(ctx, image_id, path, now)
    if active.pgp:
        return f"signed by PGP key {active.fingerprint} (a new signature object per group)"
    return f"signed by {active.dsse_keyid} (merged into the group's envelope)"


def _drop(action: Action, ctx: ApplyContext, now: datetime) -> str:
    work = _image_work(action, ctx)
    path, image_id, key_fpr, old, active = (work.path, work.image_id, work.named_fingerprint,
                                            work.named, work.active)
    if old is None or active is None:
        raise ActionError("the keys this action names are gone from the store")
    info = inspect_image(path)
    signers = {s for sig in info.signatures for s in sig.signers}
    if old.signer_id not in signers:
        reinventory(ctx, image_id, path, now)
        raise NothingToDoError(f"the image no longer carries {short(key_fpr)}'s signature")
    # A PGP key signs with objects of its own, and stock rules need every object to verify:
    # check both keys' objects, and that the active key has signed every group.
    problem = _verify_with(path, [_verifier(ctx, old), _verifier(ctx, active)]) if old.pgp \
        else _verify_with(path, [_verifier(ctx, active)])
    if not problem and old.pgp and not _in_every_envelope(info, active):
        problem = f"a group lacks a signature object by {short(active.fingerprint)}"
    if problem:
        raise ActionError(f"the active key's signature does not verify ({problem}); keeping "
                          f"{short(key_fpr)}'s signature", path=path)
    done = _remove(path, old)
    reinventory(ctx, image_id, path, now)
    return done


def _purge(action: Action, ctx: ApplyContext, now: datetime) -> str:
    work = _image_work(action, ctx)
    policy, path, image_id, first_digests = work.policy, work.path, work.image_id, work.first_digests
    key_fpr, bad, active = work.named_fingerprint, work.named, work.active
    if bad is None:
        raise ActionError(f"key {key_fpr} is not in the store")
    if active is None:
        raise ActionError(f"image set {policy.name} has no active key yet",
                          hint="the provision action runs first; apply again")
    info = inspect_image(path)
    signers = {s for sig in info.signatures for s in sig.signers}
    if bad.signer_id not in signers:
        reinventory(ctx, image_id, path, now)
        raise NothingToDoError("the image no longer carries the compromised key's signature")
    since = compromised_since(ctx, bad.fingerprint, now)
    proven = proven_before(ctx, path, bad.dsse_keyid, since, now) if since else None
    if since is not None and proven is not None:
        raise NothingToDoError(spared_message(bad.dsse_keyid, proven, since))
    if not _in_every_envelope(info, active):
        changed = sorted(i for i, d in first_digests.items() if info.digests.get(int(i)) != d)
        if changed or len(info.digests) != len(first_digests) or not info.intact:
            refuse(ctx, image_id, path, now, "its content differs from the digests recorded "
                    f"when it was first seen (objects {changed or 'added/removed'}); a "
                    "compromised key may have signed it")
        sign_image(path, _signer(ctx, active, now), SignOptions(signing_time=now))
    _remove(path, bad)
    reinventory(ctx, image_id, path, now)
    return f"signature by compromised key {bad.signer_id} replaced by {active.signer_id}"


HANDLERS: dict[ActionKind, Handler] = {
    ActionKind.RESIGN: _resign, ActionKind.DROP: _drop, ActionKind.PURGE: _purge}
