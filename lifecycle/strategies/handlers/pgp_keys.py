"""Handlers for PGP keys: extend a key's expiry (``reissue`` for PGP) and revoke it.

Both change the key, never its fingerprint: image signatures stay as they are. The key file is
rewritten (still protected by the store passphrase) and the change audited; publishing the key
(directories here, keyservers by their own action) follows from its changed content.
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.errors import ActionError
from lifecycle.integrity.pgp_validity import PgpRevocationReason, expiry_at, revocation_at
from lifecycle.inventory.fleet import PGP_REVOKED
from lifecycle.inventory.scan import carrying
from lifecycle.model.fleet import LIVE, Action, ActionKind, KeyInfo, short
from lifecycle.model.key_state import KeyState
from lifecycle.pki.pgp_maintenance import extend_expiry, revoke
from lifecycle.strategies.context import (
    ApplyContext,
    Handler,
    NothingToDoError,
    load_trust_of,
    policy_of,
    publish_all,
)


def _key(ctx: ApplyContext, fingerprint: str) -> KeyInfo:
    key = next((k for k in load_trust_of(ctx).keys if k.fingerprint == fingerprint), None)
    if key is None or not key.pgp:
        raise ActionError(f"PGP key {fingerprint} is not in the store")
    return key


def _extend(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    key = _key(ctx, action.subject)
    if key.state not in LIVE:
        raise NothingToDoError(f"key {short(key.fingerprint)} is {key.state}; it is not extended")
    row = ctx.ca.keys.get(key.fingerprint)
    pgp_key = ctx.ca.keys.pgp_key(row)
    current = expiry_at(pgp_key)
    planned = datetime.fromisoformat(action.revision) if action.revision else None
    if current is None or planned is None or int(current.timestamp()) != int(planned.timestamp()):
        raise NothingToDoError(f"key {short(key.fingerprint)} was already extended (it expires "
                               f"{current:%Y-%m-%d})" if current else "the key never expires")
    expires = (now + policy.certificate_lifetime).replace(microsecond=0)
    extend_expiry(pgp_key, ctx.passphrase.decode(), expires, now=now)
    ctx.ca.keys.update_pgp(row, pgp_key, "pgp-extend", now)
    publish_all(ctx, now)
    return f"PGP key {key.fingerprint} extended: expires {expires.isoformat()} (was {current:%Y-%m-%d})"


def _revoke(action: Action, ctx: ApplyContext, now: datetime) -> str:
    key = _key(ctx, action.subject)
    row = ctx.ca.keys.get(key.fingerprint)
    pgp_key = ctx.ca.keys.pgp_key(row)
    if revocation_at(pgp_key) is not None:
        raise NothingToDoError(f"PGP key {short(key.fingerprint)} is already revoked")
    if key.state == KeyState.COMPROMISED:
        reason = PgpRevocationReason.COMPROMISED
    elif key.state == KeyState.RETIRED:
        still = carrying(ctx.engine, key.signer_id)
        if still is not None:
            raise ActionError(f"{still} still carries the key's signature; it is revoked only "
                              "once no tracked image needs it")
        reason = PgpRevocationReason.SUPERSEDED
    else:
        raise NothingToDoError(f"key {short(key.fingerprint)} is {key.state}; it is not revoked")
    revoke(pgp_key, ctx.passphrase.decode(), reason, now=now)
    ctx.ca.keys.update_pgp(row, pgp_key, PGP_REVOKED.removeprefix("key."), now)
    publish_all(ctx, now)
    return f"PGP key {key.fingerprint} revoked (reason {reason.name.lower()})"


HANDLERS: dict[ActionKind, Handler] = {
    ActionKind.EXTEND: _extend, ActionKind.REVOKE_PGP_KEY: _revoke,
}
