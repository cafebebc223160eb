"""CRLs and publishing: refresh CRLs past half their life, write a set's trust material out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from lifecycle.inventory.fleet import read_published
from lifecycle.model.fleet import Action, ActionKind
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService
from lifecycle.strategies.context import (
    ApplyContext,
    Handler,
    NothingToDoError,
    load_trust_of,
    policy_of,
    publish_all,
)
from lifecycle.strategies.publish import publish_set


def refresh_crls(ctx: ApplyContext, now: datetime,
                 roles: tuple[str, ...] = (ROOT, INTERMEDIATE)) -> list[int]:
    """Regenerate CRLs past half their lifetime and publish; returns the new CRL numbers. A
    delegated OCSP responder's certificate is renewed on the same schedule."""
    ctx.ca.renew_ocsp_signer(now=now)
    lifetime = ctx.policies.crl_lifetime
    ca = ctx.ca
    if lifetime is not None and lifetime != ca.settings.crl_lifetime:
        ca = CaService(ca.keys, ca.passphrase, replace(ca.settings, crl_lifetime=lifetime))
    before = load_trust_of(ctx).crls
    for role in roles:
        ca.publish_crl(role, now=now)
    after = load_trust_of(ctx).crls
    fresh = [c.number for c in after if c not in before]
    if fresh:
        publish_all(ctx, now)
    return fresh


def _crl_refresh(action: Action, ctx: ApplyContext, now: datetime) -> str:
    fresh = refresh_crls(ctx, now, (action.subject,))
    if not fresh:
        raise NothingToDoError("the CRLs are still fresh")
    return f"published CRL number(s) {', '.join(map(str, fresh))}"


def _publish(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    if read_published(policy.publish_directory) == load_trust_of(ctx).revision:
        raise NothingToDoError("the publish directory is current")
    directory = publish_set(policy, ctx.ca, now)
    return f"published to {directory}"


HANDLERS: dict[ActionKind, Handler] = {
    ActionKind.CRL_REFRESH: _crl_refresh, ActionKind.PUBLISH: _publish}
