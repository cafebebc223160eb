"""The conditions operations alert on, defined once: as Prometheus rules and as checks of a snapshot.

Each :class:`Rule` has its PromQL (``sif-lifecycle alerts`` writes them, with thresholds taken from
the configuration) and its Python check over a :class:`~lifecycle.service.snapshot.Snapshot`
with the same thresholds: ``/healthz`` reports the findings as reasons and ``[notify]`` sends
them, so a site with Prometheus and one without hear about the same things.

Thresholds follow the configured windows: a certificate is overdue for renewal once less than
its set's renewal window (``renewal`` / ``renew_before_days``, at least ``distribution_lead_days``)
minus two plan intervals is left; a CRL is stale once less than half its lifetime minus two CRL
or plan intervals is left (the service re-publishes at half); a job has not succeeded for two
of its intervals.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.config import Config, Strategy
from lifecycle.model.fleet import ActionKind
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageStatus
from lifecycle.service.scheduler import job_specs
from lifecycle.service.snapshot import Snapshot
from lifecycle.store.queue import WorkState

RENEWALS = (ActionKind.PROVISION, ActionKind.PREPARE, ActionKind.CERTIFY, ActionKind.REISSUE,
            ActionKind.ROTATE)
"""Kinds whose queued presence means a renewal is planned."""
_OPEN = (WorkState.PENDING, WorkState.CLAIMED)


class RuleName(enum.StrEnum):
    CERTIFICATE_RENEWAL_OVERDUE = "SifLifecycleCertificateRenewalOverdue"
    CERTIFICATE_EXPIRING_UNPLANNED = "SifLifecycleCertificateExpiringUnplanned"
    CA_CERTIFICATE_EXPIRING = "SifLifecycleCaCertificateExpiring"
    KEY_ROTATION_OVERDUE = "SifLifecycleKeyRotationOverdue"
    CRL_STALE = "SifLifecycleCrlStale"
    BUNDLE_STALE = "SifLifecycleBundleStale"
    FORECAST_NEAR = "SifLifecycleImageSetForecastNear"
    TAMPERED_IMAGES = "SifLifecycleTamperedImages"
    ACTIONS_FAILED = "SifLifecycleActionsFailed"
    JOB_NOT_SUCCEEDING = "SifLifecycleJobNotSucceeding"
    INSTANCE_MISSING = "SifLifecycleInstanceMissing"


class Severity(enum.StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class RuleDoc:
    severity: Severity
    summary: str
    action: str
    """What the operator does about it (docs/operations.md and the alert's runbook annotation)."""


RULES: dict[RuleName, RuleDoc] = {
    RuleName.CERTIFICATE_RENEWAL_OVERDUE: RuleDoc(
        Severity.WARNING, "a signing certificate is inside its renewal window and was not renewed",
        "run `sif-lifecycle actions` for a failed reissue/rotate and fix its cause, then "
        "`sif-lifecycle actions retry --all-failed`; check the plan job succeeds"),
    RuleName.CERTIFICATE_EXPIRING_UNPLANNED: RuleDoc(
        Severity.CRITICAL, "a signing certificate has used half its renewal window and no renewal "
        "is queued", "run `sif-lifecycle plan` to see why nothing is planned; renew by hand with "
        "`sif-lifecycle apply` if needed"),
    RuleName.CA_CERTIFICATE_EXPIRING: RuleDoc(
        Severity.CRITICAL, "a CA certificate (root, intermediate, OCSP or ephemeral CA) expires soon",
        "plan the CA renewal (docs/pki.md); the lifecycle does not re-issue CA certificates itself"),
    RuleName.KEY_ROTATION_OVERDUE: RuleDoc(
        Severity.WARNING, "a signing key is past its key_rotation_days and was not rotated",
        "look for a failed rotate action (`sif-lifecycle actions --state failed`), fix, retry"),
    RuleName.CRL_STALE: RuleDoc(
        Severity.CRITICAL, "a CRL was not re-published at half its lifetime and will expire",
        "check the crl job and `sif-lifecycle ca crl`; verifiers refuse certificates once it expires"),
    RuleName.BUNDLE_STALE: RuleDoc(
        Severity.WARNING, "the newest verification bundle in the outbox goes stale soon",
        "check the publish job; export one with `sif-lifecycle bundle export` and carry it over"),
    RuleName.FORECAST_NEAR: RuleDoc(
        Severity.WARNING, "an image set stops verifying (forecast, with this tool) within "
        "[alerts] forecast_days", "read the report's forecast for the set and fix what ends it "
        "(a failed renewal, a revoked key without successor)"),
    RuleName.TAMPERED_IMAGES: RuleDoc(
        Severity.CRITICAL, "images whose signed content no longer matches, or with foreign signers",
        "compare the image with its source (the serve log's image.tampered warning gives the "
        "evidence, `sif-lifecycle images` lists them); replace it and `sif-lifecycle track` it again"),
    RuleName.ACTIONS_FAILED: RuleDoc(
        Severity.WARNING, "actions failed max_attempts times and wait for an operator",
        "`sif-lifecycle actions --state failed` shows the error; fix the cause, then "
        "`sif-lifecycle actions retry ID` (or `--all-failed`)"),
    RuleName.JOB_NOT_SUCCEEDING: RuleDoc(
        Severity.WARNING, "a scheduled job has not succeeded for two of its intervals, or failed "
        "and never succeeded",
        "read the service log for `service.job.failed` records of the job"),
    RuleName.INSTANCE_MISSING: RuleDoc(
        Severity.CRITICAL, "no serve instance answers Prometheus' scrapes",
        "start `sif-lifecycle serve` (systemd unit), check its log for why it stopped"),
}


@dataclass(frozen=True)
class Finding:
    """One condition that holds now: the same thing a Prometheus alert would fire for."""

    rule: RuleName
    subject: str
    """What it is about: a set, a serial, a job, a CA role."""
    summary: str
    image_set: str = ""

    @property
    def key(self) -> str:
        """The identity of the condition (a notification is sent once per key and summary)."""
        return f"{self.rule.value}:{self.subject}"[:255]

    @property
    def severity(self) -> Severity:
        return RULES[self.rule].severity

    def to_dict(self) -> dict[str, Any]:
        return {"alertname": self.rule.value, "severity": self.severity.value,
                "subject": self.subject, "image_set": self.image_set, "summary": self.summary}


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use, from the configuration."""

    renewal_window: dict[str, timedelta]
    """Key-based set -> how long before expiry its certificates are renewed."""
    key_rotation: dict[str, timedelta]
    """Resign set -> key_rotation_days."""
    grace: timedelta
    crl_left: timedelta
    bundle_left: timedelta
    forecast: timedelta
    ca_expiry: timedelta
    ocsp_expiry: timedelta
    """The OCSP signer lives ``[ca] ocsp_signer_lifetime`` (90 days): warned a third of it ahead."""
    jobs: dict[str, timedelta]
    pending: timedelta
    job_label: str

    @classmethod
    def of(cls, config: Config) -> Thresholds:
        serve = config.serve
        grace = 2 * max(serve.plan_interval, serve.scan_interval)
        window, rotation = {}, {}
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        for policy in config.policies.image_sets:
            if policy.strategy is Strategy.EPHEMERAL:
                continue
            end = epoch + policy.certificate_lifetime
            window[policy.name] = end - policy.renewal_opens(epoch, end)
            if policy.strategy is Strategy.RESIGN:
                rotation[policy.name] = policy.key_rotation
        crl_lifetime = config.policies.crl_lifetime or config.ca.crl_lifetime
        crl_left = crl_lifetime / 2 - 2 * max(serve.crl_interval, serve.plan_interval)
        if crl_left <= timedelta(0):
            crl_left = crl_lifetime / 4
        bundle_left = max(config.policies.distribution_lead, timedelta(days=1)) \
            + 2 * serve.publish_interval
        specs = {spec.id: spec.interval for spec in job_specs(serve)}
        if config.notify.enabled:
            specs["notify"] = config.notify.interval
        return cls(window, rotation, grace, crl_left, bundle_left,
                   timedelta(days=config.alerts.forecast_days),
                   timedelta(days=config.alerts.ca_expiry_days),
                   min(timedelta(days=config.alerts.ca_expiry_days), config.ca.ocsp_signer_lifetime / 3),
                   specs, config.alerts.pending, config.alerts.job)


def rotation_due(since: datetime, image_set: str, th: Thresholds) -> datetime | None:
    rotation = th.key_rotation.get(image_set)
    return since + rotation if rotation is not None else None


def renewal_planned(snapshot: Snapshot) -> bool:
    return any(w.kind in RENEWALS and w.state in _OPEN and w.total for w in snapshot.work)


def verifiable_until(snapshot: Snapshot, config: Config) -> dict[tuple[str, str], float]:
    """(set, tool) -> the forecast end as a Unix time (``inf``: no end in sight).

    ``stock``: the earliest expiry among the current certificates of the set's active and
    retiring keys (what ``singularity verify --certificate`` needs at the time it runs).
    ``sif-lifecycle``: no end while the service renews in time (an ephemeral set's log evidence
    never ends); the stock date when one of the set's actions failed for good.
    """
    failed_sets = {item.image_set for item in snapshot.failed}
    signing = {k.fingerprint for k in snapshot.keys if k.state in (KeyState.ACTIVE, KeyState.RETIRING)}
    stock: dict[str, float] = {}
    for cert in snapshot.certificates:
        if cert.role == CaRole.LEAF and cert.fingerprint in signing and cert.image_set:
            at = cert.not_after.timestamp()
            stock[cert.image_set] = min(stock.get(cert.image_set, math.inf), at)
    out: dict[tuple[str, str], float] = {}
    for policy in config.policies.image_sets:
        if policy.name in stock:
            out[(policy.name, "stock")] = stock[policy.name]
        ephemeral = policy.strategy is Strategy.EPHEMERAL
        ours = stock.get(policy.name, math.inf) if policy.name in failed_sets and not ephemeral \
            else math.inf
        out[(policy.name, "sif-lifecycle")] = ours
    return out


def findings(snapshot: Snapshot, config: Config, th: Thresholds | None = None) -> list[Finding]:
    """Every condition of :data:`RULES` that holds in ``snapshot`` (instance-missing excepted:
    only an outside observer can see that)."""
    th = th or Thresholds.of(config)
    return list(_findings(snapshot, config, th))


def _left(at: datetime, now: datetime) -> str:
    seconds = (at - now).total_seconds()
    return f"expired {_span(-seconds)} ago" if seconds < 0 else f"{_span(seconds)} left"


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


def _findings(snap: Snapshot, config: Config, th: Thresholds) -> Iterator[Finding]:
    now = snap.at
    planned = renewal_planned(snap)
    for cert in snap.certificates:
        left = cert.not_after - now
        window = th.renewal_window.get(cert.image_set)
        if cert.role == CaRole.LEAF and window is not None:
            what = f"certificate {cert.serial} of set {cert.image_set} ({_left(cert.not_after, now)})"
            if left < window / 2 and not planned:
                yield Finding(RuleName.CERTIFICATE_EXPIRING_UNPLANNED, cert.serial,
                              f"{what}: no renewal is queued", cert.image_set)
            elif left < window - th.grace:
                yield Finding(RuleName.CERTIFICATE_RENEWAL_OVERDUE, cert.serial,
                              f"{what}: renewal overdue", cert.image_set)
        elif cert.role != CaRole.LEAF and left < (
                th.ocsp_expiry if cert.role == CaRole.OCSP else th.ca_expiry):
            yield Finding(RuleName.CA_CERTIFICATE_EXPIRING, f"{cert.role}:{cert.serial}",
                          f"the {cert.role} CA certificate {cert.serial}: {_left(cert.not_after, now)}")
    for key in snap.keys:
        due = rotation_due(key.active_since, key.image_set, th)
        if key.state == KeyState.ACTIVE and due is not None and now - due > th.grace:
            yield Finding(RuleName.KEY_ROTATION_OVERDUE, key.fingerprint,
                          f"key {key.fingerprint[:16]} of set {key.image_set}: rotation was due "
                          f"{due.date().isoformat()}", key.image_set)
    for crl in snap.crls:
        if crl.next_update - now < th.crl_left:
            yield Finding(RuleName.CRL_STALE, crl.role, f"the {crl.role} CRL #{crl.number}: "
                          f"next update {crl.next_update.isoformat()} ({_left(crl.next_update, now)})")
    if snap.bundle_valid_until is not None and snap.bundle_valid_until - now < th.bundle_left:
        yield Finding(RuleName.BUNDLE_STALE, "outbox", "the newest bundle is valid until "
                      f"{snap.bundle_valid_until.isoformat()} ({_left(snap.bundle_valid_until, now)})")
    horizon = now.timestamp() + th.forecast.total_seconds()
    for (name, tool), until in verifiable_until(snap, config).items():
        if tool == "sif-lifecycle" and until < horizon:
            yield Finding(RuleName.FORECAST_NEAR, name, f"image set {name} is forecast to verify "
                          f"only until {datetime.fromtimestamp(until, now.tzinfo).date()}", name)
    for count in snap.images:
        if count.status == ImageStatus.TAMPERED and count.total:
            name = count.image_set or "(no set)"
            paths = snap.tampered.get(count.image_set, [])
            more = f" and {count.total - len(paths)} more" if count.total > len(paths) else ""
            yield Finding(RuleName.TAMPERED_IMAGES, name,
                          f"{count.total} tampered image(s) in set {name}: {', '.join(paths)}{more}",
                          count.image_set)
    failed = sum(w.total for w in snap.work if w.state == WorkState.FAILED)
    if failed:
        shown = "; ".join(f"#{f.id} {f.key} after {f.attempts} attempts: {f.error}"
                          for f in snap.failed[:5])
        yield Finding(RuleName.ACTIONS_FAILED, "queue", f"{failed} failed action(s): {shown}")
    for run in snap.jobs:
        interval = th.jobs.get(run.job)
        if interval is None:
            continue
        last = run.last_success
        if (last is None and run.last_failure is not None) or (
                last is not None and now - last > 2 * interval):
            when = last.isoformat() if last is not None else "never"
            yield Finding(RuleName.JOB_NOT_SUCCEEDING, run.job,
                          f"job {run.job} (every {interval}) last succeeded: {when}")


def reference() -> str:
    """The Markdown table of the rules (docs/operations.md embeds it; a test keeps it current)."""
    lines = ["| alert | severity | fires when | what to do |", "|---|---|---|---|"]
    lines += [f"| `{name.value}` | {doc.severity.value} | {doc.summary} | {doc.action} |"
              for name, doc in RULES.items()]
    return "\n".join(lines) + "\n"
