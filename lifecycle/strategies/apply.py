"""Apply one planned action, idempotently: re-check the store, do the work, audit the outcome.

Every action is safe to run twice (the second run finds the work done and reports ``skipped``)
and safe to interrupt: certificates and key transitions are single transactions, and images
change only through the crash-safe writers of ``lifecycle.integrity.sign``, which keep every
image verifiable at every instant. Re-signing never blesses an image whose current signatures do
not verify with the set's trusted keys: it is refused, marked ``tampered`` and audited.
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.errors import ActionError, LifecycleError, TamperedImageError
from lifecycle.model.fleet import Action, ActionKind, ApplyStatus
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.strategies.context import (
    ApplyContext,
    ApplyResult,
    Handler,
    NothingToDoError,
)
from lifecycle.strategies.handlers import ephemeral, images, keys, keyserver, pgp_keys, publishing

__all__ = ["ApplyContext", "ApplyResult", "ApplyStatus", "apply"]

_HANDLERS: dict[ActionKind, Handler] = {**keys.HANDLERS, **images.HANDLERS, **ephemeral.HANDLERS,
                                 **publishing.HANDLERS, **pgp_keys.HANDLERS,
                                 **keyserver.HANDLERS}


def apply(action: Action, ctx: ApplyContext, now: datetime) -> ApplyResult:
    """Do ``action`` if it is still needed; always leaves an audit record of what happened."""
    handler = _HANDLERS.get(action.kind)
    status, detail = ApplyStatus.DONE, ""
    try:
        if handler is None:
            raise ActionError(f"unknown action kind {action.kind!r}")
        if not action.ready(now):
            raise ActionError(f"not before {action.not_before.isoformat()}",
                              hint="its window has not opened yet")
        detail = handler(action, ctx, now)
    except NothingToDoError as skip:
        status, detail = ApplyStatus.SKIPPED, str(skip)
    except TamperedImageError as exc:
        status, detail = ApplyStatus.REFUSED, str(exc)
    except LifecycleError as exc:
        status, detail = ApplyStatus.FAILED, str(exc)
    with session_scope(ctx.engine) as session:
        audit.record(session, now, f"action.{action.kind}", action.subject[-255:],
                     key=action.key, result=status.value, detail=detail,
                     image_set=action.image_set, reason=action.reason)
    return ApplyResult(action.key, action.kind, action.subject, status, detail)


# -- helpers ------------------------------------------------------------------------------
