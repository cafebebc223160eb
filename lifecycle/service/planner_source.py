"""The work source that runs the lifecycle planner: what ``serve`` does by default.

The service shares work through its queue; this adapter gives it the inventory scan, the pure
planner and the idempotent ``apply`` of :mod:`lifecycle.strategies`. Applying moves the CA's clock
to the action's time, so each worker thread gets a context of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lifecycle.errors import ServiceError
from lifecycle.inventory.scan import scan
from lifecycle.service.work import SourceContext, WorkSource
from lifecycle.store.ca_service import CaService
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.actions import Action
from lifecycle.strategies.apply import FAILED, ApplyContext, apply, refresh_crls
from lifecycle.strategies.plan import plan
from lifecycle.strategies.state import load_state


class PlannerSource:
    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self._local = threading.local()

    def _apply_context(self) -> ApplyContext:
        ctx: ApplyContext | None = getattr(self._local, "ctx", None)
        if ctx is None:
            config = self.context.config
            ca = CaService(KeyService(self.context.engine, config.key_directory),
                           self.context.passphrase, config.ca)  # fmt: skip
            ctx = ApplyContext(self.context.engine, config.policies, ca)
            self._local.ctx = ctx
        return ctx

    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        report = scan(self.context.engine, self.context.config.policies.scan_roots(), now, full=full)
        return report.to_dict()

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        policies = self.context.config.policies
        state = load_state(self.context.engine, now, policies.publish_directories())
        return [action.to_dict() for action in plan(state, policies, now)]

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        """Done, skipped and refused are final; a failure raises so the queue retries it."""
        result = apply(Action.from_dict(dict(action)), self._apply_context(), now)
        if result.status == FAILED:
            raise ServiceError(f"{result.kind} {result.subject}: {result.detail}")
        return result.to_dict()

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        if self.context.ca is None:
            return {"published": []}
        return {"published": refresh_crls(self._apply_context(), now)}


def planner_source(context: SourceContext) -> WorkSource:
    return PlannerSource(context)
