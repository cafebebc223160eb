"""The work source that runs the lifecycle planner: what ``serve`` does by default.

The service shares work through its queue; this adapter gives it the inventory scan, the pure
planner and the idempotent ``apply`` of :mod:`lifecycle.strategies`. Each worker thread gets a
context of its own (its own CA and key service objects, so no state is shared between threads).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lifecycle.errors import ServiceError
from lifecycle.inventory.fleet import load_state
from lifecycle.inventory.scan import scan
from lifecycle.model.fleet import Action
from lifecycle.service.transparency import config_log_client
from lifecycle.service.work import SourceContext, WorkSource
from lifecycle.store.ca_service import CaService
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.apply import ApplyContext, ApplyStatus, apply
from lifecycle.strategies.handlers.publishing import refresh_crls
from lifecycle.strategies.plan import plan
from lifecycle.timestamp.client import configured
from lifecycle.tlog.client import LocalLogClient


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
            log = config_log_client(config, self.context.passphrase)  # ephemeral sets sign through it
            stamper = configured(config.timestamp)
            ctx = ApplyContext(self.context.engine, config.policies, ca, log,
                               (lambda _now: stamper) if stamper else None)
            self._local.ctx = ctx
        return ctx

    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        policies = self.context.config.policies
        report = scan(self.context.engine, policies.scan_roots(), now, full=full, policies=policies)
        return report.to_dict()

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        policies = self.context.config.policies
        state = load_state(self.context.engine, now, policies.publish_directories(),
                           self.context.config.key_directory)
        return [action.to_dict() for action in plan(state, policies, now)]

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        """Done, skipped and refused are final; a failure raises so the queue retries it."""
        result = apply(Action.from_dict(dict(action)), self._apply_context(), now)
        if result.status == ApplyStatus.FAILED:
            raise ServiceError(f"{result.kind} {result.subject}: {result.detail}")
        return result.to_dict()

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        if self.context.ca is None:
            return {"published": []}
        return {"published": refresh_crls(self._apply_context(), now)}


    def publish(self, now: datetime) -> Mapping[str, Any]:
        """The report and, when its content changed, a new bundle in the outbox (as configured)."""
        from lifecycle.bundles import export_to_outbox
        from lifecycle.bundles.exporter import options_for
        from lifecycle.reports import write_report

        settings = self.context.config.serve
        done: dict[str, Any] = {}
        if settings.report_directory is not None:
            settings.report_directory.mkdir(parents=True, exist_ok=True)
            paths = write_report(self.context.engine, self.context.config, now, settings.report_directory,
                                 outbox=settings.bundle_outbox)  # fmt: skip
            done["report"] = [str(p) for p in paths]
        if settings.bundle_outbox is not None and self.context.ca is not None:
            client = self._apply_context().log
            log = client.log if isinstance(client, LocalLogClient) else None
            written = export_to_outbox(self.context.ca, settings.bundle_outbox, settings.bundle_keep,
                                       log=log, now=now,
                                       options=options_for(self.context.config))  # fmt: skip
            done["bundle"] = {"path": str(written.path), "new": written.written}
        return done


def planner_source(context: SourceContext) -> WorkSource:
    return PlannerSource(context)
