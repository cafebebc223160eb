"""What the service runs, behind a small protocol: the scheduler triggers, a work source decides.

The service knows nothing about strategies: it asks a :class:`WorkSource` to scan, to plan (a list
of actions as JSON-able dicts with a stable ``key``) and to apply one action, and it queues, shares
and audits that work. ``[serve] work_source = "MODULE:ATTRIBUTE"`` names a factory called with a
:class:`SourceContext`; this is the plug-in point where the planner is wired in (and where tests
put work whose side effects they can count).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.engine import Engine

from lifecycle.config import Config
from lifecycle.errors import KeyNotFoundError, ServiceError, StoreError
from lifecycle.store.ca_service import INTERMEDIATE, CaService

log = logging.getLogger(__name__)


@runtime_checkable
class WorkSource(Protocol):
    """The four things the scheduled jobs ask for; every method gets the time to act as of."""

    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        """Refresh the inventory (``full``: re-verify everything); returns counts for the log."""
        ...

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        """The actions due or coming, each a dict with at least ``key`` and ``kind``."""
        ...

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        """Do one action (idempotent: a repeat after a crash changes nothing); returns its result."""
        ...

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        """Re-publish CRLs that are due."""
        ...

    def publish(self, now: datetime) -> Mapping[str, Any]:
        """Write what people and air-gapped sites read: the report, a fresh verification bundle."""
        ...


@dataclass(frozen=True)
class SourceContext:
    """What a work source factory may use: the config, the store and the key passphrase."""

    config: Config
    engine: Engine
    passphrase: bytes
    ca: CaService | None


SourceFactory = Callable[[SourceContext], WorkSource]


def load_source(reference: str, context: SourceContext) -> WorkSource:
    """Import ``MODULE:ATTRIBUTE`` and call it with ``context``."""
    module_name, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ServiceError(f"[serve] work_source {reference!r} cannot be loaded: {exc}",
                           hint="give MODULE:ATTRIBUTE of a factory importable by the service") from exc
    source = factory(context)
    if not isinstance(source, WorkSource):
        raise ServiceError(f"[serve] work_source {reference!r} returned {type(source).__name__}, "
                           "which lacks scan/plan_actions/apply/refresh_crls/publish")
    return source


def initialized_ca(ca: CaService) -> CaService | None:
    """The CA if ``ca init`` was run (its certificates exist), else None: serve runs without it."""
    try:
        ca.certificate(INTERMEDIATE)
    except (KeyNotFoundError, StoreError):
        log.warning("no CA in the store: OCSP, CRL and CA endpoints are off (run 'sif-lifecycle ca init')")
        return None
    return ca


class CaOnlySource:
    """The built-in source until a planner is wired in: keeps CRLs fresh, plans nothing."""

    def __init__(self, ca: CaService | None) -> None:
        self.ca = ca

    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        return {"images": 0}

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        return []

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        raise ServiceError(f"no strategy can apply action kind {action.get('kind')!r}",
                           hint="set [serve] work_source to the planner")

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        if self.ca is None:
            return {"published": []}
        self.ca.renew_ocsp_signer(now=now)
        return {"published": sorted(self.ca.publish_crls())}

    def publish(self, now: datetime) -> Mapping[str, Any]:
        return {}


def default_source(context: SourceContext) -> WorkSource:
    return CaOnlySource(context.ca)
