"""Handlers for keys and certificates: provision, prepare, certify, re-issue, rotate, retire,
revoke. Each is a few single transactions on the store, then a publish of the trust material."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from lifecycle.config import ImageSetPolicy, KeyType
from lifecycle.errors import ActionError
from lifecycle.inventory.fleet import link_key
from lifecycle.inventory.scan import carrying
from lifecycle.model.fleet import LIVE, Action, ActionKind, Trust, short
from lifecycle.model.key_state import KeyState
from lifecycle.pki.pgp import PgpAlgorithm
from lifecycle.store.models import KeyRecord
from lifecycle.strategies.context import (
    ApplyContext,
    Handler,
    NothingToDoError,
    active_key,
    has_valid_certificate,
    keys_in,
    load_trust_of,
    policy_of,
    publish_all,
)
from lifecycle.strategies.handlers.proven import compromised_since


def _new_key(ctx: ApplyContext, policy: ImageSetPolicy, now: datetime) -> KeyRecord:
    """A pending key linked to the set, with a certificate (adopting ``signing_key`` if set).

    PGP sets get a PGP key expiring one ``certificate_lifetime`` from now, and no certificate.
    """
    trust = load_trust_of(ctx)
    adopted = None
    if policy.signing_key and not any(k.image_set == policy.name for k in trust.keys):
        adopted = ctx.ca.keys.get(policy.signing_key)
    if adopted is not None:
        row = adopted
    elif policy.key_type is KeyType.PGP:
        row = ctx.ca.keys.generate_pgp(PgpAlgorithm(policy.key_algorithm.value), policy.user_id,
                                       ctx.passphrase, expires=now + policy.certificate_lifetime,
                                       now=now)
    else:
        row = ctx.ca.keys.generate(policy.key_algorithm, ctx.passphrase, now=now)
    link_key(ctx.engine, policy.name, row.id or 0, now)
    _certify_if_needed(ctx, policy, row.fingerprint, now, trust)
    return row


def _certify_if_needed(ctx: ApplyContext, policy: ImageSetPolicy, fingerprint: str,
                       now: datetime, trust: Trust | None = None) -> None:
    """Issue a certificate for a PEM key that has none valid (PGP keys never get one)."""
    if ctx.ca.keys.get(fingerprint).kind == KeyType.PGP.value:
        return
    if not has_valid_certificate(trust or load_trust_of(ctx), fingerprint, now):
        ctx.ca.issue(fingerprint, policy.subject_name, policy.certificate_lifetime, now=now)


def _provision(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    trust = load_trust_of(ctx)
    if active_key(trust, policy.name) is not None:
        raise NothingToDoError(f"image set {policy.name} already has an active key")
    pending = keys_in(trust, policy.name, KeyState.PENDING)
    fingerprint = pending[0].fingerprint if pending else _new_key(ctx, policy, now).fingerprint
    _certify_if_needed(ctx, policy, fingerprint, now)
    if ctx.ca.keys.get(fingerprint).state != KeyState.ACTIVE:  # an adopted key may be
        ctx.ca.keys.transition(fingerprint, KeyState.ACTIVE, f"signing key of image set "
                               f"{policy.name}", at=now)
    publish_all(ctx, now)
    return f"key {fingerprint} is the active key of {policy.name}"


def _prepare(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    if keys_in(load_trust_of(ctx), policy.name, KeyState.PENDING):
        raise NothingToDoError("a successor key is already prepared")
    row = _new_key(ctx, policy, now)
    publish_all(ctx, now)
    return f"successor key {row.fingerprint} created and published"


def _certify(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    trust = load_trust_of(ctx)
    if has_valid_certificate(trust, action.subject, now):
        raise NothingToDoError("the key already has a valid certificate")
    key = next((x for x in trust.keys if x.fingerprint == action.subject), None)
    if key is not None and key.state not in LIVE:
        # Retired since it was planned: a round can hold both retire and certify of one key.
        raise NothingToDoError(f"key {short(key.fingerprint)} is {key.state}; it needs no "
                               "certificate")
    issued = ctx.ca.issue(action.subject, policy.subject_name, policy.certificate_lifetime, now=now)
    publish_all(ctx, now)
    return f"certificate {issued.record.serial} issued"


def _reissue(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    trust = load_trust_of(ctx)
    cert = next((c for c in trust.certificates if c.serial == action.subject), None)
    if cert is None:
        raise ActionError(f"certificate {action.subject} is not in the store")
    if cert.superseded or cert.revoked:
        raise NothingToDoError(f"certificate {short(cert.serial)} was already "
                    f"{'revoked' if cert.revoked else 're-issued'}")
    issued = ctx.ca.reissue(action.subject, policy.certificate_lifetime, now=now)
    publish_all(ctx, now)
    return (f"certificate {issued.record.serial} re-issues {cert.serial}; valid until "
            f"{issued.record.not_after.isoformat()}")


def _rotate(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    trust = load_trust_of(ctx)
    current = active_key(trust, policy.name)
    if current is None or current.fingerprint != action.subject:
        raise NothingToDoError(f"key {short(action.subject)} is no longer the active key")
    pending = keys_in(trust, policy.name, KeyState.PENDING)
    fingerprint = pending[0].fingerprint if pending else _new_key(ctx, policy, now).fingerprint
    _certify_if_needed(ctx, policy, fingerprint, now)
    # Retiring first: a crash between the two leaves no active key, which provision resumes
    # by activating the pending one; the other order would leave two active keys for ever.
    ctx.ca.keys.transition(current.fingerprint, KeyState.RETIRING,
                           f"replaced by {fingerprint}; signatures kept for "
                           f"{policy.overlap.days} days", at=now)
    ctx.ca.keys.transition(fingerprint, KeyState.ACTIVE, f"rotation of image set {policy.name}",
                           at=now)
    publish_all(ctx, now)
    return f"key {fingerprint} active; key {current.fingerprint} retiring"


def _retire(action: Action, ctx: ApplyContext, now: datetime) -> str:
    trust = load_trust_of(ctx)
    key = next((x for x in trust.keys if x.fingerprint == action.subject), None)
    if key is None or key.state != KeyState.RETIRING:
        raise NothingToDoError(f"key {short(action.subject)} is not retiring")
    still = carrying(ctx.engine, key.signer_id)
    if still is not None:
        raise ActionError(f"{still} still carries the key's signature")
    ctx.ca.keys.transition(key.fingerprint, KeyState.RETIRED, "overlap over; no tracked image "
                           "carries its signature", at=now)
    publish_all(ctx, now)
    return f"key {key.fingerprint} retired"


def _revoke(action: Action, ctx: ApplyContext, now: datetime) -> str:
    record = ctx.ca.find(action.subject)
    if ctx.ca.revocation(record) is not None:
        raise NothingToDoError(f"certificate {short(action.subject)} is already revoked")
    since = compromised_since(ctx, ctx.ca.keys.get(str(record.key_id)).fingerprint, now) \
        if record.key_id is not None else None
    ctx.ca.revoke(action.subject, x509.ReasonFlags.key_compromise, invalidity_date=since, now=now)
    publish_all(ctx, now)
    return f"certificate {action.subject} revoked (keyCompromise" + (
        f", invalidity date {since.isoformat()})" if since else ")")


HANDLERS: dict[ActionKind, Handler] = {
    ActionKind.PROVISION: _provision, ActionKind.PREPARE: _prepare, ActionKind.CERTIFY: _certify,
    ActionKind.REISSUE: _reissue, ActionKind.ROTATE: _rotate, ActionKind.RETIRE: _retire,
    ActionKind.REVOKE: _revoke,
}
