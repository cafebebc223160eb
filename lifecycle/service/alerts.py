"""``sif-lifecycle alerts``: the Prometheus alert rules of :mod:`lifecycle.service.conditions`,
with the thresholds of a configuration. ``config/alerts.yml`` is this output for the example
configuration (a test keeps them equal)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from lifecycle.config import Config
from lifecycle.model.roles import CaRole
from lifecycle.service.conditions import RENEWALS, RULES, RuleName, Thresholds

_M = "sif_lifecycle_"


def _duration(span: timedelta) -> str:
    """A Prometheus duration: the largest unit that divides it."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _s(span: timedelta) -> str:
    return str(int(span.total_seconds()))


def _rule(name: RuleName, expr: str, th: Thresholds, description: str,
          **labels: str) -> dict[str, Any]:
    doc = RULES[name]
    return {"alert": name.value, "expr": expr, "for": _duration(th.pending),
            "labels": {"severity": doc.severity.value, **labels},
            "annotations": {"summary": doc.summary, "description": description,
                            "action": doc.action}}


def rules(config: Config) -> dict[str, Any]:
    """The rule file (as a document) for ``config``."""
    th = Thresholds.of(config)
    cert = f'{_M}certificate_expiry_timestamp_seconds'
    renewals = "|".join(kind.value for kind in RENEWALS)
    out: list[dict[str, Any]] = []
    for name, window in sorted(th.renewal_window.items()):
        sel = f'{cert}{{role="{CaRole.LEAF.value}",image_set="{name}"}}'
        out.append(_rule(RuleName.CERTIFICATE_RENEWAL_OVERDUE,
                         f"{sel} - time() < {_s(window - th.grace)}", th,
                         f"Certificate {{{{ $labels.serial }}}} of set {name} expires in "
                         f"{{{{ $value | humanizeDuration }}}}; it is renewed {_duration(window)} "
                         "before expiry.", image_set=name))
        out.append(_rule(RuleName.CERTIFICATE_EXPIRING_UNPLANNED,
                         f"({sel} - time() < {_s(window / 2)}) unless on() "
                         f'(sum({_M}actions{{kind=~"{renewals}",state=~"pending|claimed"}}) > 0)', th,
                         f"Certificate {{{{ $labels.serial }}}} of set {name} expires in "
                         "{{ $value | humanizeDuration }} and no renewal is queued.", image_set=name))
    leaf, ocsp = CaRole.LEAF.value, CaRole.OCSP.value
    out.append(_rule(RuleName.CA_CERTIFICATE_EXPIRING,
                     f'({cert}{{role!="{leaf}",role!="{ocsp}"}} - time() < {_s(th.ca_expiry)}) or '
                     f'({cert}{{role="{ocsp}"}} - time() < {_s(th.ocsp_expiry)})', th,
                     "The {{ $labels.role }} CA certificate {{ $labels.serial }} expires in "
                     "{{ $value | humanizeDuration }}."))
    for name, _rotation in sorted(th.key_rotation.items()):
        out.append(_rule(RuleName.KEY_ROTATION_OVERDUE,
                         f'time() - {_M}key_rotation_due_timestamp_seconds{{image_set="{name}",'
                         f'state="active"}} > {_s(th.grace)}', th,
                         f"Key {{{{ $labels.fingerprint }}}} of set {name} was due for rotation "
                         "{{ $value | humanizeDuration }} ago.", image_set=name))
    out.append(_rule(RuleName.CRL_STALE,
                     f"{_M}crl_next_update_timestamp_seconds - time() < {_s(th.crl_left)}", th,
                     "The {{ $labels.issuer }} CRL expires in {{ $value | humanizeDuration }}; "
                     "it should have been re-published at half its lifetime."))
    out.append(_rule(RuleName.BUNDLE_STALE,
                     f"{_M}bundle_valid_until_timestamp_seconds - time() < {_s(th.bundle_left)}", th,
                     "The newest outbox bundle is valid for {{ $value | humanizeDuration }} more."))
    out.append(_rule(RuleName.FORECAST_NEAR,
                     f'{_M}image_set_verifiable_until_timestamp_seconds{{tool="sif-lifecycle"}} '
                     f"- time() < {_s(th.forecast)}", th,
                     "Image set {{ $labels.image_set }} is forecast to stop verifying in "
                     "{{ $value | humanizeDuration }}."))
    out.append(_rule(RuleName.TAMPERED_IMAGES, f'{_M}images{{status="tampered"}} > 0', th,
                     "{{ $value }} tampered image(s) in set {{ $labels.image_set }}."))
    out.append(_rule(RuleName.ACTIONS_FAILED,
                     f'sum by (kind) ({_M}actions{{state="failed"}}) > 0', th,
                     "{{ $value }} {{ $labels.kind }} action(s) failed for good."))
    out.append(_rule(RuleName.JOB_NOT_SUCCEEDING,
                     f"(time() - {_M}job_last_success_timestamp_seconds) > (2 * "
                     f"{_M}job_interval_seconds) or (time() - {_M}job_last_failure_timestamp_seconds "
                     f"unless {_M}job_last_success_timestamp_seconds)", th,
                     "Job {{ $labels.job_id }}: {{ $value | humanizeDuration }} since its last success "
                     "(never successful: since its last failure)."))
    out.append(_rule(RuleName.INSTANCE_MISSING, f'absent(up{{job="{th.job_label}"}} == 1)', th,
                     f"No instance of scrape job {th.job_label} is up."))
    return {"groups": [{"name": "sif-lifecycle", "rules": out}]}


def render(config: Config) -> str:
    header = ("# Prometheus alert rules of sif-lifecycle, written by `sif-lifecycle alerts`.\n"
              "# Regenerate after changing the configuration: the thresholds follow it.\n")
    return header + yaml.safe_dump(rules(config), sort_keys=False, width=100)
