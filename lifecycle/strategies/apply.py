"""Apply one planned action, idempotently: re-check the store, do the work, audit the outcome.

Every action is safe to run twice (the second run finds the work done and reports ``skipped``)
and safe to interrupt: certificates and key transitions are single transactions, and images
change only through the crash-safe writers of ``lifecycle.integrity.sign``, which keep every
image verifiable at every instant. Re-signing never blesses an image whose current signatures do
not verify with the set's trusted keys: it is refused, marked ``tampered`` and audited.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import ActionError, LifecycleError, TamperedImageError, VerificationError
from lifecycle.integrity import dsse
from lifecycle.integrity.keys import VerifierKey
from lifecycle.integrity.sign import DsseSigner, SignOptions, remove_signatures, sign_image
from lifecycle.inventory.inspect import ImageInfo, inspect_image
from lifecycle.inventory.models import PRESENT, TAMPERED, SetKeyRecord
from lifecycle.inventory.scan import IMAGES, SIGNATURES, event, record_image
from lifecycle.pki import keys as pki_keys
from lifecycle.pki.key_state import KeyState
from lifecycle.store import audit
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService
from lifecycle.store.db import session_scope
from lifecycle.store.models import KeyRecord
from lifecycle.strategies import actions as k
from lifecycle.strategies.actions import Action, short
from lifecycle.strategies.plan import due_now, plan
from lifecycle.strategies.policy import ImageSetPolicy, Policies
from lifecycle.strategies.publish import LIVE, publish_set
from lifecycle.strategies.state import (
    EPHEMERAL_EVENT,
    KeyInfo,
    Trust,
    load_set_keys,
    load_state,
    load_trust,
    read_published,
)
from lifecycle.tlog.client import LocalLogClient, LogClient
from lifecycle.tlog.note import NoteVerifier
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, verify

DONE, SKIPPED, REFUSED, FAILED = "done", "skipped", "refused", "failed"
SET_KEYS = SetKeyRecord.__table__  # type: ignore[attr-defined]


@dataclass
class ApplyContext:
    """What applying needs: the store, the policies and the CA (which holds the passphrase).

    One context per worker thread: applying sets the CA's clock to the action's ``now``.
    """

    engine: Engine
    policies: Policies
    ca: CaService
    log: LogClient | None = None
    """The transparency log ephemeral sets sign through (``[tlog]``); a local one runs at the
    action's ``now`` like the CA."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def passphrase(self) -> bytes:
        return self.ca.passphrase


@dataclass(frozen=True)
class ApplyResult:
    key: str
    kind: str
    subject: str
    status: str
    """``done``, ``skipped`` (already done or no longer needed), ``refused`` or ``failed``."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (DONE, SKIPPED)

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "kind": self.kind, "subject": self.subject,
                "status": self.status, "detail": self.detail}


class _SkipError(Exception):
    """The effect is already there (or no longer wanted): nothing to do."""


@contextmanager
def _clock(ctx: ApplyContext, now: datetime) -> Iterator[None]:
    """Run the CA at ``now`` (the simulated clock in tests, the real one in service)."""
    local = ctx.log.log if isinstance(ctx.log, LocalLogClient) else None
    with ctx._lock:
        saved = ctx.ca.keys.clock
        saved_log = local.clock if local is not None else None
        ctx.ca.keys.clock = lambda: now
        if local is not None:
            local.clock = lambda: now
        try:
            yield
        finally:
            ctx.ca.keys.clock = saved
            if local is not None and saved_log is not None:
                local.clock = saved_log


def apply(action: Action, ctx: ApplyContext, now: datetime) -> ApplyResult:
    """Do ``action`` if it is still needed; always leaves an audit record of what happened."""
    handler = _HANDLERS.get(action.kind)
    status, detail = DONE, ""
    with _clock(ctx, now):
        try:
            if handler is None:
                raise ActionError(f"unknown action kind {action.kind!r}")
            if not action.ready(now):
                raise ActionError(f"not before {action.not_before.isoformat()}",
                                  hint="its window has not opened yet")
            detail = handler(action, ctx, now)
        except _SkipError as skip:
            status, detail = SKIPPED, str(skip)
        except TamperedImageError as exc:
            status, detail = REFUSED, str(exc)
        except LifecycleError as exc:
            status, detail = FAILED, str(exc)
        with session_scope(ctx.engine) as session:
            audit.record(session, now, f"action.{action.kind}", action.subject[-255:],
                         key=action.key, result=status, detail=detail,
                         image_set=action.image_set, reason=action.reason)
    return ApplyResult(action.key, action.kind, action.subject, status, detail)


# -- helpers ------------------------------------------------------------------------------


def _policy(ctx: ApplyContext, action: Action) -> ImageSetPolicy:
    policy = ctx.policies.get(action.image_set)
    if policy is None:
        raise ActionError(f"image set {action.image_set!r} is not in the configuration")
    return policy


def _trust(ctx: ApplyContext) -> Trust:
    with ctx.engine.connect() as conn:
        return load_trust(conn)


def _keys_of(ctx: ApplyContext, name: str) -> Trust:
    """Only the set's keys (no certificates): cheap enough for one per-image action each."""
    with ctx.engine.connect() as conn:
        return Trust(load_set_keys(conn, name), (), (), "")


def _set_keys(trust: Trust, name: str, *states: str) -> list[KeyInfo]:
    return [key for key in trust.keys if key.image_set == name and key.state in states]


def _active(trust: Trust, name: str) -> KeyInfo | None:
    return max(_set_keys(trust, name, KeyState.ACTIVE.value),
               key=lambda x: (x.activated_at or x.created_at, x.fingerprint), default=None)


def _has_valid_certificate(trust: Trust, fingerprint: str, now: datetime) -> bool:
    return any(c.key_fingerprint == fingerprint and not c.revoked and c.not_after > now
               for c in trust.certificates)


def _publish_all(ctx: ApplyContext, now: datetime) -> None:
    for policy in ctx.policies.image_sets:
        publish_set(policy, ctx.ca, now)


def _new_key(ctx: ApplyContext, policy: ImageSetPolicy, now: datetime) -> KeyRecord:
    """A pending key linked to the set, with a certificate (adopting ``signing_key`` if set)."""
    trust = _trust(ctx)
    adopted = None
    if policy.signing_key and not any(k.image_set == policy.name for k in trust.keys):
        adopted = ctx.ca.keys.get(policy.signing_key)
    row = adopted or ctx.ca.keys.generate(policy.key_algorithm, ctx.passphrase)
    with ctx.engine.begin() as conn:
        conn.execute(insert(SET_KEYS).values(image_set=policy.name, key_id=row.id, added_at=now))
    if not _has_valid_certificate(trust, row.fingerprint, now):
        ctx.ca.issue(row.fingerprint, policy.subject_name, policy.certificate_lifetime)
    return row


def _verifier(ctx: ApplyContext, key: KeyInfo) -> VerifierKey:
    public = pki_keys.load_public_key(ctx.ca.keys.public_bytes(key.fingerprint, ctx.passphrase),
                                      path=f"key {key.fingerprint}")
    return VerifierKey(f"key {short(key.fingerprint)}", public)


def _signer(ctx: ApplyContext, key: KeyInfo) -> DsseSigner:
    return DsseSigner((ctx.ca.keys.private_key(ctx.ca.keys.get(key.fingerprint),
                                               ctx.passphrase),))


def _image_row(ctx: ApplyContext, path: str) -> tuple[int, str, dict[str, str]]:
    with ctx.engine.connect() as conn:
        row = conn.execute(select(IMAGES.c.id, IMAGES.c.status, IMAGES.c.digests)
                           .where(IMAGES.c.path == path)).first()
    if row is None:
        raise ActionError("image is not in the inventory", path=path,
                          hint="run 'sif-lifecycle track' or 'scan' first")
    return row[0], row[1], json.loads(row[2])


def _refuse(ctx: ApplyContext, image_id: int, path: str, now: datetime, reason: str) -> None:
    """Mark the image tampered, leave an event for the alert, and stop the action."""
    with ctx.engine.begin() as conn:
        conn.execute(update(IMAGES).where(IMAGES.c.id == image_id).values(status=TAMPERED))
        event(conn, image_id, now, "tampered", reason=reason)
        event(conn, image_id, now, "refused", reason=reason)
    raise TamperedImageError(f"refused: {reason}; the image is marked tampered", path=path,
                             hint="inspect it; re-track it once it is restored")


def _verify_with(path: str, verifiers: list[VerifierKey]) -> str:
    """'' when every signature of the image verifies with ``verifiers``, else why not."""
    try:
        verify(path, TrustMaterial(keys=tuple(verifiers)))
    except VerificationError as exc:
        return exc.reason
    return ""


def _reinventory(ctx: ApplyContext, image_id: int, path: str, now: datetime) -> None:
    info = inspect_image(path)
    with ctx.engine.begin() as conn:
        record_image(conn, info, Path(path).stat(), now, (image_id, PRESENT))


def _in_every_envelope(info: ImageInfo, keyid: str) -> bool:
    """Signed by ``keyid`` in every DSSE envelope (a crash can leave an old envelope beside
    the merged one until the retry replaces both)."""
    envelopes = [s for s in info.signatures if s.format == "dsse"]
    return bool(envelopes) and all(keyid in s.signers for s in envelopes)


def _present(ctx: ApplyContext, path: str) -> tuple[int, dict[str, str]]:
    image_id, status, digests = _image_row(ctx, path)
    if status != PRESENT:
        raise _SkipError(f"image is {status}; it is not changed automatically")
    if not Path(path).is_file():
        raise ActionError("image file is missing", path=path, hint="run 'sif-lifecycle scan'")
    return image_id, digests


# -- handlers -----------------------------------------------------------------------------


def _provision(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    trust = _trust(ctx)
    if _active(trust, policy.name) is not None:
        raise _SkipError(f"image set {policy.name} already has an active key")
    pending = _set_keys(trust, policy.name, KeyState.PENDING.value)
    fingerprint = pending[0].fingerprint if pending else _new_key(ctx, policy, now).fingerprint
    if not _has_valid_certificate(_trust(ctx), fingerprint, now):
        ctx.ca.issue(fingerprint, policy.subject_name, policy.certificate_lifetime)
    if ctx.ca.keys.get(fingerprint).state != KeyState.ACTIVE.value:  # an adopted key may be
        ctx.ca.keys.transition(fingerprint, KeyState.ACTIVE, f"signing key of image set "
                               f"{policy.name}", at=now)
    _publish_all(ctx, now)
    return f"key {fingerprint} is the active key of {policy.name}"


def _prepare(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    if _set_keys(_trust(ctx), policy.name, KeyState.PENDING.value):
        raise _SkipError("a successor key is already prepared")
    row = _new_key(ctx, policy, now)
    _publish_all(ctx, now)
    return f"successor key {row.fingerprint} created and published"


def _certify(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    if _has_valid_certificate(_trust(ctx), action.subject, now):
        raise _SkipError("the key already has a valid certificate")
    issued = ctx.ca.issue(action.subject, policy.subject_name, policy.certificate_lifetime)
    _publish_all(ctx, now)
    return f"certificate {issued.record.serial} issued"


def _reissue(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    trust = _trust(ctx)
    cert = next((c for c in trust.certificates if c.serial == action.subject), None)
    if cert is None:
        raise ActionError(f"certificate {action.subject} is not in the store")
    if cert.superseded or cert.revoked:
        raise _SkipError(f"certificate {short(cert.serial)} was already "
                    f"{'revoked' if cert.revoked else 're-issued'}")
    issued = ctx.ca.reissue(action.subject, policy.certificate_lifetime)
    _publish_all(ctx, now)
    return (f"certificate {issued.record.serial} re-issues {cert.serial}; valid until "
            f"{issued.record.not_after.isoformat()}")


def _rotate(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    trust = _trust(ctx)
    current = _active(trust, policy.name)
    if current is None or current.fingerprint != action.subject:
        raise _SkipError(f"key {short(action.subject)} is no longer the active key")
    pending = _set_keys(trust, policy.name, KeyState.PENDING.value)
    fingerprint = pending[0].fingerprint if pending else _new_key(ctx, policy, now).fingerprint
    if not _has_valid_certificate(_trust(ctx), fingerprint, now):
        ctx.ca.issue(fingerprint, policy.subject_name, policy.certificate_lifetime)
    ctx.ca.keys.transition(fingerprint, KeyState.ACTIVE, f"rotation of image set {policy.name}",
                           at=now)
    ctx.ca.keys.transition(current.fingerprint, KeyState.RETIRING,
                           f"replaced by {fingerprint}; signatures kept for "
                           f"{policy.overlap.days} days", at=now)
    _publish_all(ctx, now)
    return f"key {fingerprint} active; key {current.fingerprint} retiring"


@dataclass(frozen=True)
class _ImageWork:
    """What every per-image action of a set starts from: the image, its set's keys, the key named
    by the action's key (its last part) and the set's active key."""

    policy: ImageSetPolicy
    path: str
    image_id: int
    first_digests: dict[str, str]
    trust: Trust
    named_fingerprint: str
    named: KeyInfo | None
    active: KeyInfo | None


def _image_work(action: Action, ctx: ApplyContext) -> _ImageWork:
    policy = _policy(ctx, action)
    image_id, first_digests = _present(ctx, action.subject)
    trust = _keys_of(ctx, policy.name)
    fingerprint = action.key.rsplit(":", 1)[1]
    named = next((x for x in trust.keys if x.fingerprint == fingerprint), None)
    return _ImageWork(policy, action.subject, image_id, first_digests, trust, fingerprint, named,
                      _active(trust, policy.name))


def _resign(action: Action, ctx: ApplyContext, now: datetime) -> str:
    work = _image_work(action, ctx)
    policy, path, image_id, trust, active = work.policy, work.path, work.image_id, work.trust, work.active
    key_fpr = work.named_fingerprint
    if active is None or active.fingerprint != key_fpr:
        raise _SkipError(f"key {short(key_fpr)} is no longer the active key")
    if _in_every_envelope(inspect_image(path), active.dsse_keyid):
        _reinventory(ctx, image_id, path, now)
        raise _SkipError("the image already carries the active key's signature")
    trusted = [_verifier(ctx, key) for key in _set_keys(trust, policy.name, *LIVE)]
    problem = _verify_with(path, trusted)
    if problem:
        _refuse(ctx, image_id, path, now, f"its current signatures do not verify with the "
                f"trusted keys of {policy.name} ({problem})")
    sign_image(path, _signer(ctx, active), SignOptions())
    _reinventory(ctx, image_id, path, now)
    return f"signed by {active.dsse_keyid} (merged into the group's envelope)"


def _drop(action: Action, ctx: ApplyContext, now: datetime) -> str:
    work = _image_work(action, ctx)
    path, image_id, key_fpr, old, active = (work.path, work.image_id, work.named_fingerprint,
                                            work.named, work.active)
    if old is None or active is None:
        raise ActionError("the keys this action names are gone from the store")
    signers = {s for sig in inspect_image(path).signatures for s in sig.signers}
    if old.dsse_keyid not in signers:
        _reinventory(ctx, image_id, path, now)
        raise _SkipError(f"the image no longer carries {short(key_fpr)}'s signature")
    problem = _verify_with(path, [_verifier(ctx, active)])
    if problem:
        raise ActionError(f"the active key's signature does not verify ({problem}); keeping "
                          f"{short(key_fpr)}'s signature", path=path)
    removed = remove_signatures(path, {old.dsse_keyid})
    _reinventory(ctx, image_id, path, now)
    return f"dropped {old.dsse_keyid} from {len(removed)} envelope(s)"


def _retire(action: Action, ctx: ApplyContext, now: datetime) -> str:
    trust = _trust(ctx)
    key = next((x for x in trust.keys if x.fingerprint == action.subject), None)
    if key is None or key.state != KeyState.RETIRING.value:
        raise _SkipError(f"key {short(action.subject)} is not retiring")
    with ctx.engine.connect() as conn:
        carrying = conn.execute(
            select(IMAGES.c.path).join(SIGNATURES, SIGNATURES.c.image_id == IMAGES.c.id)
            .where(SIGNATURES.c.signer == key.dsse_keyid, IMAGES.c.status == PRESENT)).first()
    if carrying is not None:
        raise ActionError(f"{carrying[0]} still carries the key's signature")
    ctx.ca.keys.transition(key.fingerprint, KeyState.RETIRED, "overlap over; no tracked image "
                           "carries its signature", at=now)
    _publish_all(ctx, now)
    return f"key {key.fingerprint} retired"


def _revoke(action: Action, ctx: ApplyContext, now: datetime) -> str:
    record = ctx.ca.find(action.subject)
    if ctx.ca.revocation(record) is not None:
        raise _SkipError(f"certificate {short(action.subject)} is already revoked")
    ctx.ca.revoke(action.subject, x509.ReasonFlags.key_compromise)
    _publish_all(ctx, now)
    return f"certificate {action.subject} revoked (keyCompromise)"


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
    if bad.dsse_keyid not in signers:
        _reinventory(ctx, image_id, path, now)
        raise _SkipError("the image no longer carries the compromised key's signature")
    if not _in_every_envelope(info, active.dsse_keyid):
        changed = sorted(i for i, d in first_digests.items() if info.digests.get(int(i)) != d)
        if changed or len(info.digests) != len(first_digests) or not info.intact:
            _refuse(ctx, image_id, path, now, "its content differs from the digests recorded "
                    f"when it was first seen (objects {changed or 'added/removed'}); a "
                    "compromised key may have signed it")
        sign_image(path, _signer(ctx, active), SignOptions())
    remove_signatures(path, {bad.dsse_keyid})
    _reinventory(ctx, image_id, path, now)
    return f"signature by compromised key {bad.dsse_keyid} replaced by {active.dsse_keyid}"


def _logged_for(ctx: ApplyContext, log: LogClient, path: str, identity: str
                ) -> tuple[set[str], str]:
    """(keyids of valid logged signatures naming ``identity``, why the image's signatures do
    not all verify or '').

    Every signature must verify through its log evidence (chain at the logged time, under the
    CA's root; inclusion under a checkpoint signed by the log's key); a signature without
    evidence cannot be judged here, so it counts as failing: never bless what is not checked.
    """
    if not inspect_image(path).signatures:
        return set(), ""
    trust = TrustMaterial(roots=(ctx.ca.certificate(ROOT),),
                          log_keys=(NoteVerifier.from_verifier_key(log.verifier_key()),),
                          identity=IdentityPolicy(patterns=(".+",)), revocation="soft-fail")
    try:
        result = verify(path, trust)
    except VerificationError as exc:
        return set(), exc.reason
    return {r.keyid for r in result.longterm or () if r.identity == identity}, ""


def _record_logged(ctx: ApplyContext, image_id: int, path: str, now: datetime, identity: str,
                   keyids: set[str]) -> None:
    """Re-inventory the image and remember its logged signatures for the planner."""
    _reinventory(ctx, image_id, path, now)
    with ctx.engine.begin() as conn:
        for keyid in sorted(keyids):
            event(conn, image_id, now, EPHEMERAL_EVENT, identity=identity, keyid=keyid)


def _sign_ephemeral(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    path = action.subject
    image_id, _ = _present(ctx, path)
    if ctx.log is None:
        raise ActionError(f"image set {policy.name} signs ephemerally but no transparency log "
                          "is configured", hint="add a [tlog] section to the config and run "
                          "'sif-lifecycle tlog init'")
    found, problem = _logged_for(ctx, ctx.log, path, policy.identity)
    if problem:
        _refuse(ctx, image_id, path, now, f"its current signatures do not verify ({problem})")
    if found:
        _record_logged(ctx, image_id, path, now, policy.identity, found)
        raise _SkipError(f"the image already carries a logged signature for {policy.identity}")
    verifier = NoteVerifier.from_verifier_key(ctx.log.verifier_key())
    result = sign_ephemeral(path, policy.identity, ctx.ca, ctx.log, now=now,
                            lifetime=policy.ephemeral_lifetime, algorithm=policy.key_algorithm,
                            log_keys=(verifier,))
    keyid = dsse.keyid(result.certificate.public_key())  # type: ignore[arg-type]
    _record_logged(ctx, image_id, path, now, policy.identity, {keyid})
    where = ", ".join(f"{e.checkpoint.origin} #{e.index}" for e in result.entries)
    return f"signed as {policy.identity} by ephemeral key {keyid}; logged as {where}"


def refresh_crls(ctx: ApplyContext, now: datetime,
                 roles: tuple[str, ...] = (ROOT, INTERMEDIATE)) -> list[int]:
    """Regenerate CRLs past half their lifetime and publish; returns the new CRL numbers."""
    lifetime = ctx.policies.crl_lifetime
    ca = ctx.ca
    if lifetime is not None and lifetime != ca.settings.crl_lifetime:
        ca = CaService(ca.keys, ca.passphrase, replace(ca.settings, crl_lifetime=lifetime))
    before = _trust(ctx).crls
    for role in roles:
        ca.publish_crl(role)
    after = _trust(ctx).crls
    fresh = [c.number for c in after if c not in before]
    if fresh:
        _publish_all(ctx, now)
    return fresh


def _crl_refresh(action: Action, ctx: ApplyContext, now: datetime) -> str:
    fresh = refresh_crls(ctx, now, (action.subject,))
    if not fresh:
        raise _SkipError("the CRLs are still fresh")
    return f"published CRL number(s) {', '.join(map(str, fresh))}"


def _publish(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = _policy(ctx, action)
    if read_published(policy.publish_directory) == _trust(ctx).revision:
        raise _SkipError("the publish directory is current")
    directory = publish_set(policy, ctx.ca, now)
    return f"published to {directory}"


_HANDLERS: dict[str, Callable[[Action, ApplyContext, datetime], str]] = {
    k.PROVISION: _provision, k.PREPARE: _prepare, k.CERTIFY: _certify, k.REISSUE: _reissue,
    k.ROTATE: _rotate, k.RESIGN: _resign, k.DROP: _drop, k.RETIRE: _retire, k.REVOKE: _revoke,
    k.PURGE: _purge, k.CRL_REFRESH: _crl_refresh, k.PUBLISH: _publish,
    k.SIGN_EPHEMERAL: _sign_ephemeral,
}


def run_due(ctx: ApplyContext, now: datetime,
            on_result: Callable[[Action, ApplyResult], None] | None = None) -> list[ApplyResult]:
    """Apply every due action in-process until none is left, each key at most once.

    One action's effect can make another due (a rotation makes re-signing due), so it plans
    again after each round. The service does the same through its work queue.
    """
    results: list[ApplyResult] = []
    tried: set[str] = set()
    while True:
        state = load_state(ctx.engine, now, ctx.policies.publish_directories())
        pending = [a for a in due_now(plan(state, ctx.policies, now), now) if a.key not in tried]
        if not pending:
            return results
        for action in pending:
            tried.add(action.key)
            results.append(apply(action, ctx, now))
            if on_result is not None:
                on_result(action, results[-1])
