"""What every apply handler shares: the context, the result, and the store look-ups they start from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.errors import ActionError
from lifecycle.inventory.fleet import load_set_keys, load_trust
from lifecycle.model.fleet import Action, ActionKind, ApplyStatus, KeyInfo, Trust
from lifecycle.model.key_state import KeyState
from lifecycle.store.ca_service import CaService
from lifecycle.strategies.publish import publish_set
from lifecycle.tlog.client import LocalLogClient, LogClient


@dataclass
class ApplyContext:
    """What applying needs: the store, the policies and the CA (which holds the passphrase).

    Applying passes the action's ``now`` to the CA, the key service and a local log, so one
    context may serve several threads and a simulated clock never leaks into another action.
    """

    engine: Engine
    policies: Policies
    ca: CaService
    log: LogClient | None = None
    """The transparency log ephemeral sets sign through (``[tlog]``); a local one integrates
    entries at the action's ``now`` like the CA (see :func:`log_at`)."""
    stamper_at: Callable[[datetime], Callable[[bytes], Sequence[bytes]]] | None = None
    """RFC 3161 tokens for every signature the strategies make (``[timestamp]``), given the
    action's ``now`` (a remote TSA keeps its own clock; the simulation's local one uses it)."""

    @property
    def passphrase(self) -> bytes:
        return self.ca.passphrase


@dataclass(frozen=True)
class ApplyResult:
    key: str
    kind: ActionKind
    subject: str
    status: ApplyStatus
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (ApplyStatus.DONE, ApplyStatus.SKIPPED)

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "kind": self.kind.value, "subject": self.subject,
                "status": self.status.value, "detail": self.detail}


class NothingToDoError(Exception):
    """The effect is already there (or no longer wanted): nothing to do."""


def policy_of(ctx: ApplyContext, action: Action) -> ImageSetPolicy:
    policy = ctx.policies.get(action.image_set)
    if policy is None:
        raise ActionError(f"image set {action.image_set!r} is not in the configuration")
    return policy


def load_trust_of(ctx: ApplyContext) -> Trust:
    with ctx.engine.connect() as conn:
        return load_trust(conn)


def set_keys_of(ctx: ApplyContext, name: str) -> Trust:
    """Only the set's keys (no certificates): cheap enough for one per-image action each."""
    with ctx.engine.connect() as conn:
        return Trust(load_set_keys(conn, name), (), (), "")


def keys_in(trust: Trust, name: str, *states: KeyState) -> list[KeyInfo]:
    return [key for key in trust.keys if key.image_set == name and key.state in states]


def active_key(trust: Trust, name: str) -> KeyInfo | None:
    return max(keys_in(trust, name, KeyState.ACTIVE),
               key=lambda x: (x.activated_at or x.created_at, x.fingerprint), default=None)


def has_valid_certificate(trust: Trust, fingerprint: str, now: datetime) -> bool:
    return any(c.key_fingerprint == fingerprint and not c.revoked and c.not_after > now
               for c in trust.certificates)


def log_at(ctx: ApplyContext, now: datetime) -> LogClient | None:
    """The context's log, integrating entries at ``now`` when it runs in this process (a remote
    log keeps its own clock)."""
    return ctx.log.at(now) if isinstance(ctx.log, LocalLogClient) else ctx.log


def publish_all(ctx: ApplyContext, now: datetime) -> None:
    for policy in ctx.policies.image_sets:
        publish_set(policy, ctx.ca, now)


Handler = Callable[[Action, ApplyContext, datetime], str]
"""Does one kind of action; returns what it did, raises :class:`NothingToDoError` to skip."""
