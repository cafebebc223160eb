"""``[notify]``: the service tells people itself, for sites without Prometheus.

The ``notify`` job (one instance per scheduled run, like every job) evaluates the conditions of
:mod:`lifecycle.service.conditions` and:

- webhooks and e-mail: announces each condition once per state (the table
  :mod:`lifecycle.store.notifications` de-duplicates across instances), retrying a failed
  delivery with a doubling delay, up to ``max_attempts``; every attempt is audited;
- Alertmanager: posts every condition that holds to ``/api/v2/alerts`` at each run, with an
  ``endsAt`` three intervals ahead, and resolves (``endsAt`` now) those that stopped: that is
  Alertmanager's protocol, and it de-duplicates and routes them itself.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Engine

from lifecycle.config import NotifyTable
from lifecycle.service.conditions import RULES, Finding, RuleName
from lifecycle.store import audit, notifications
from lifecycle.store.db import session_scope
from lifecycle.store.queries import latest_audit

log = logging.getLogger(__name__)
SOURCE = "sif-lifecycle"
LEASE = timedelta(minutes=2)
RESOLVED_KEY = "notify.alertmanager.firing"


class DeliveryError(Exception):
    """A channel refused or could not be reached."""


def subject_line(finding: Finding) -> str:
    where = f"image set {finding.image_set}" if finding.image_set else finding.subject
    return f"[{SOURCE}] {finding.severity.value}: {finding.rule.value} ({where}): {finding.summary}"[:900]


def webhook_body(finding: Finding, now: datetime) -> dict[str, Any]:
    return {"source": SOURCE, "status": "firing", "condition": finding.key, "at": now.isoformat(),
            **finding.to_dict(), "action": RULES[finding.rule].action}


def alertmanager_alerts(firing: Sequence[Finding], resolved: Sequence[Finding], now: datetime,
                        interval: timedelta) -> list[dict[str, Any]]:
    """Alertmanager API v2 ``postableAlerts``: firing ones end three intervals ahead unless renewed."""
    ends = {id(f): now + 3 * interval for f in firing} | {id(f): now for f in resolved}
    return [{"labels": {"alertname": f.rule.value, "severity": f.severity.value, "source": SOURCE,
                        "subject": f.subject, "image_set": f.image_set},
             "annotations": {"summary": f.summary, "action": RULES[f.rule].action},
             "startsAt": now.astimezone(UTC).isoformat(),
             "endsAt": ends[id(f)].astimezone(UTC).isoformat()} for f in (*firing, *resolved)]


def _finding_of(condition: str, summary: str, known: dict[str, Finding]) -> Finding:
    if condition in known:
        return known[condition]
    rule, _, subject = condition.partition(":")
    return Finding(RuleName(rule), subject, summary)


class Notifier:
    def __init__(self, engine: Engine, settings: NotifyTable) -> None:
        self.engine = engine
        self.settings = settings

    @property
    def channels(self) -> list[str]:
        return [*self.settings.webhooks, *([f"smtp://{self.settings.smtp_host}"]
                                           if self.settings.smtp_host else [])]

    def run(self, found: Sequence[Finding], now: datetime) -> dict[str, Any]:
        """One notify job run: announce what is new, retry what is due, refresh Alertmanager."""
        result: dict[str, Any] = {"conditions": len(found)}
        if self.channels:
            notifications.note(self.engine, [(f.key, f.summary) for f in found], now)
            result |= self._deliver({f.key: f for f in found}, now)
        if self.settings.alertmanager_url:
            result["alertmanager"] = self._alertmanager(found, now)
        return result

    def _deliver(self, known: dict[str, Finding], now: datetime) -> dict[str, int]:
        counts = {"sent": 0, "retry": 0, "failed": 0}
        while (item := notifications.claim(self.engine, LEASE, now)) is not None:
            finding = _finding_of(item.condition, item.summary, known)
            try:
                self._send(finding, now)
                error, retry_at, outcome = None, None, "sent"
            except DeliveryError as exc:
                error = str(exc)
                if item.attempts < self.settings.max_attempts:
                    retry_at = now + self.settings.retry_delay * 2 ** (item.attempts - 1)
                    outcome = "retry"
                else:
                    retry_at, outcome = None, "failed"
                log.warning("notification %s: %s (%s)", item.condition, error, outcome,
                            extra={"fields": {"event": f"notify.{outcome}",
                                              "condition": item.condition, "attempt": item.attempts}})
            if notifications.finish(self.engine, item, now, error=error, retry_at=retry_at,
                                    channels=self.channels):
                counts[outcome] += 1
        return counts

    def _send(self, finding: Finding, now: datetime) -> None:
        errors = []
        for url in self.settings.webhooks:
            try:
                _post_json(url, webhook_body(finding, now), self.settings.timeout)
            except DeliveryError as exc:
                errors.append(f"{url}: {exc}")
        if self.settings.smtp_host:
            try:
                self._mail(finding, now)
            except DeliveryError as exc:
                errors.append(f"smtp://{self.settings.smtp_host}: {exc}")
        if errors:
            raise DeliveryError("; ".join(errors))

    def _mail(self, finding: Finding, now: datetime) -> None:
        s = self.settings
        assert s.smtp_host is not None and s.smtp_from is not None
        message = EmailMessage()
        message["Subject"] = subject_line(finding)
        message["From"] = s.smtp_from
        message["To"] = ", ".join(s.smtp_to)
        message.set_content(json.dumps(webhook_body(finding, now), indent=2) + "\n")
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout.total_seconds()) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    def _alertmanager(self, found: Sequence[Finding], now: datetime) -> int:
        """Post the firing conditions, and resolve those that fired at the last run and stopped."""
        url = str(self.settings.alertmanager_url).rstrip("/") + "/api/v2/alerts"
        previous = _last_firing(self.engine, now)
        current = {f.key for f in found}
        resolved = [finding for key, finding in previous.items() if key not in current]
        alerts = alertmanager_alerts(found, resolved, now, self.settings.interval)
        error = None
        if alerts:
            try:
                _post_json(url, alerts, self.settings.timeout)
            except DeliveryError as exc:
                error = str(exc)
                log.warning("alertmanager %s: %s", url, error,
                            extra={"fields": {"event": "notify.alertmanager.failed"}})
        with session_scope(self.engine) as session:
            firing = found if error is None else list(previous.values())
            audit.record(session, now, RESOLVED_KEY, url[:255], error=error,
                         firing={f.key: f.to_dict() for f in firing},
                         resolved=[f.key for f in resolved])
        return len(alerts)


def _last_firing(engine: Engine, now: datetime) -> dict[str, Finding]:
    """What the last Alertmanager post said was firing (from its audit row, which we wrote)."""
    entry = latest_audit(engine, RESOLVED_KEY, now)
    doc = json.loads(entry.detail) if entry is not None else {}
    firing = doc.get("firing") if isinstance(doc, dict) else None
    if not isinstance(firing, dict):
        return {}
    found = {}
    for key, item in firing.items():
        try:
            found[str(key)] = Finding(RuleName(item["alertname"]), str(item["subject"]),
                                      str(item["summary"]), str(item.get("image_set", "")))
        except (KeyError, TypeError, ValueError):
            continue  # a row of an older format: nothing to resolve
    return found


def _post_json(url: str, body: Any, timeout: timedelta) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": SOURCE})
    try:
        with urllib.request.urlopen(request, timeout=timeout.total_seconds()) as answer:  # noqa: S310
            answer.read(64 * 1024)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
