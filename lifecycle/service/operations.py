"""What operations see of a running service: metrics, conditions (for /healthz) and notifications."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from lifecycle.clock import Clock, utc_now
from lifecycle.config import Config
from lifecycle.service.conditions import Finding, Thresholds, findings
from lifecycle.service.metrics import MetricsEndpoint, StoreCollector
from lifecycle.service.notify import Notifier


class Operations:
    def __init__(self, engine: Engine, config: Config, clock: Clock = utc_now) -> None:
        self.config = config
        self.thresholds = Thresholds.of(config)
        self.collector = StoreCollector(engine, config, clock)
        self.metrics = MetricsEndpoint(self.collector)
        self.notifier = Notifier(engine, config.notify) if config.notify.enabled else None

    def findings(self) -> list[Finding]:
        return findings(self.collector.snapshot(), self.config, self.thresholds)

    def notify(self, now: datetime) -> Mapping[str, Any]:
        if self.notifier is None:
            return {}
        snap = self.collector.snapshot()
        return self.notifier.run(findings(snap, self.config, self.thresholds), now)
