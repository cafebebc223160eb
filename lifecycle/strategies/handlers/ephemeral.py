"""The ephemeral handler: sign an image with a fresh key whose signature the log records."""

from __future__ import annotations

from datetime import datetime

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import ActionError
from lifecycle.integrity import dsse
from lifecycle.inventory.inspect import is_signed
from lifecycle.inventory.scan import LOST_SIGNATURES, ever_signed, record_ephemeral
from lifecycle.model.fleet import Action, ActionKind
from lifecycle.store.ca_service import EPHEMERAL
from lifecycle.strategies.context import ApplyContext, Handler, NothingToDoError, log_at, policy_of
from lifecycle.strategies.handlers.checks import _logged_for
from lifecycle.strategies.handlers.images import present_image, refuse, reinventory
from lifecycle.tlog.note import NoteVerifier


def _record_logged(ctx: ApplyContext, image_id: int, path: str, now: datetime, identity: str,
                   keyids: set[str]) -> None:
    """Re-inventory the image and remember its logged signatures for the planner."""
    reinventory(ctx, image_id, path, now)
    record_ephemeral(ctx.engine, image_id, now, identity, keyids)


def _sign_ephemeral(action: Action, ctx: ApplyContext, now: datetime) -> str:
    policy = policy_of(ctx, action)
    path = action.subject
    image_id, _ = present_image(ctx, path)
    log = log_at(ctx, now)
    if log is None:
        raise ActionError(f"image set {policy.name} signs ephemerally but no transparency log "
                          "is configured", hint="add a [tlog] section to the config and run "
                          "'sif-lifecycle tlog init'")
    if not is_signed(path):
        with ctx.engine.connect() as conn:
            lost = ever_signed(conn, image_id)
        if lost:  # signing it would bless whatever replaced the signed content
            refuse(ctx, image_id, path, now, LOST_SIGNATURES)
    found, problem = _logged_for(ctx, log, path, policy.identity)
    if problem:
        refuse(ctx, image_id, path, now, f"its current signatures do not verify ({problem})")
    if found:
        _record_logged(ctx, image_id, path, now, policy.identity, found)
        raise NothingToDoError(f"the image already carries a logged signature for "
                               f"{policy.identity}")
    if not ctx.ca.has_role(EPHEMERAL):
        ctx.ca.init_ephemeral(now=now)
    verifier = NoteVerifier.from_verifier_key(log.verifier_key())
    result = sign_ephemeral(path, policy.identity, ctx.ca, log, now=now,
                            lifetime=policy.ephemeral_lifetime, algorithm=policy.key_algorithm,
                            log_keys=(verifier,))
    keyid = dsse.keyid(result.certificate.public_key())  # type: ignore[arg-type]
    _record_logged(ctx, image_id, path, now, policy.identity, {keyid})
    where = ", ".join(f"{e.checkpoint.origin} #{e.index}" for e in result.entries)
    return f"signed as {policy.identity} by ephemeral key {keyid}; logged as {where}"


HANDLERS: dict[ActionKind, Handler] = {ActionKind.SIGN_EPHEMERAL: _sign_ephemeral}
