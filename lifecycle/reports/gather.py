"""Gather a report's data: the planner's state and plan, plus a few queries the planner skips.

Everything is read in one pass at ``now``; nothing is written. The transparency log (when the
store's database holds one, or ``log_engine`` is given) adds its status and which images it has
evidence for; the audit log's ``bundle.export`` rows (or an outbox directory) give bundle
freshness.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

# The outbox's reader: the same rule (newest readable bundle) as the exporter's refresh check.
from lifecycle.bundles.exporter import EXPORT_ACTION, _newest
from lifecycle.config import Config, Policies
from lifecycle.errors import LogError
from lifecycle.inventory.fleet import load_state, sif_ids, tampered_images
from lifecycle.model.fleet import FleetState
from lifecycle.model.status import ImageStatus
from lifecycle.reports.checked import confirm_now, pgp_public_keys
from lifecycle.reports.forecast import FleetIndex, Forecast, forecast
from lifecycle.reports.model import (
    BundleStatus,
    CertRow,
    CrlRow,
    KeyRow,
    LogStatus,
    ReportData,
    SetSummary,
    TamperedRow,
)
from lifecycle.store.key_publications import KeyPublicationStatus, key_status
from lifecycle.store.queries import certificate_pems, latest_audit, revocations_by_serial
from lifecycle.store.tlog import log_summary, read_meta
from lifecycle.strategies.plan import notes, plan

EXPIRING_WITHIN = timedelta(days=90)


def _tampered(engine: Engine, policies: Policies) -> list[TamperedRow]:
    out = []
    for row in tampered_images(engine):
        policy = policies.set_for(row.path)
        out.append(TamperedRow(row.path, policy.name if policy else "", row.at, row.kind,
                               _reason(row.detail)))
    return out


def _reason(detail: str) -> str:
    try:
        doc = json.loads(detail)
    except ValueError:
        return detail
    reason = doc.get("reason", detail) if isinstance(doc, dict) else detail
    return "; ".join(map(str, reason)) if isinstance(reason, list) else str(reason)


def _log_status(engine: Engine, *, required: bool) -> tuple[LogStatus, set[str]] | None:
    """The log's identity, size, newest entry and the image ids it has entries for.

    The log signs checkpoints on demand, so its newest entry is when its tree last changed.
    A store without a log has none to report; a log database named explicitly must hold one.
    """
    try:
        meta = read_meta(engine)
    except LogError:
        if required:
            raise
        return None
    if "origin" not in meta:
        if required:
            raise LogError("the database has no transparency log",
                           hint="run 'sif-lifecycle tlog init' first")
        return None
    size, newest, logged = log_summary(engine)
    return LogStatus(meta["origin"], size, newest, meta.get("verifier_key", "")), logged


def _bundle_status(engine: Engine, outbox: Path | None, now: datetime) -> BundleStatus | None:
    """The newest export: from an outbox directory if given, else from the audit log."""
    newest = _newest(outbox) if outbox is not None and outbox.is_dir() else None
    if newest is not None:
        path, manifest = newest
        return BundleStatus(str(path), manifest.created, manifest.valid_until,
                            manifest.valid_until <= now)
    row = latest_audit(engine, EXPORT_ACTION, now)
    if row is None:
        return None
    valid_until = datetime.fromisoformat(json.loads(row.detail)["valid_until"])
    return BundleStatus(row.subject, row.at, valid_until, valid_until <= now)


def _set_summaries(state: FleetState, policies: Policies, data_forecasts: Sequence[Forecast]
                   ) -> list[SetSummary]:
    out = []
    keyids = {key.dsse_keyid: key.fingerprint for key in state.keys}
    keyids |= {key.fingerprint: key.fingerprint for key in state.keys}
    for policy in policies.image_sets:
        images = [x for x in state.images if policies.set_for(x.path) is policy]
        counts = {status: sum(1 for x in images if x.status == status)
                  for status in ImageStatus}
        signers = sorted({keyids.get(s, s) for x in images if x.status != ImageStatus.REMOVED
                          for s in x.signers})
        mine = [f for f in data_forecasts if f.image_set == policy.name and f.status == ImageStatus.PRESENT]
        cert_ends = [f.certificate.until for f in mine if f.certificate.until is not None]
        tool_ends = [f.tool.until for f in mine if f.tool.until is not None]
        out.append(SetSummary(policy.name, policy.strategy, counts[ImageStatus.PRESENT],
                              counts[ImageStatus.REMOVED], counts[ImageStatus.TAMPERED], tuple(signers),
                              min(cert_ends, default=None), min(tool_ends, default=None)))
    return out


def build_report(engine: Engine, config: Config, now: datetime, *,
                 log_engine: Engine | None = None, outbox: Path | None = None,
                 verify_images: bool = False) -> ReportData:
    """Everything a report shows, as of ``now`` (aware UTC).

    ``verify_images`` confirms every "verifies now" claim with :func:`lifecycle.verify.verify`
    (one read of each image that the forecast says verifies).
    """
    policies = config.policies
    state = load_state(engine, now, policies.publish_directories(), config.key_directory)
    actions = plan(state, policies, now)
    log = _log_status(log_engine or engine, required=log_engine is not None)
    logged = log[1] if log else set()
    revoked = revocations_by_serial(engine)
    tampered = _tampered(engine, policies)
    bundle = _bundle_status(engine, outbox, now)
    ids = sif_ids(engine)
    set_of_key = {key.fingerprint: key.image_set or "" for key in state.keys}
    index = FleetIndex.build(state.keys, state.certificates, actions)
    forecasts = tuple(
        forecast(image, policies.set_for(image.path), index, now,
                 logged=ids.get(image.path, "") in logged)
        for image in state.images if image.status != ImageStatus.REMOVED)
    if verify_images:
        forecasts = confirm_now(forecasts, index.certificates, certificate_pems(engine), now,
                                pgp_public_keys(engine, config.key_directory, state.keys))
    keys = tuple(KeyRow(key.fingerprint, key.image_set or "", key.state, key.created_at,
                        key.activated_at, _key_end(key.retiring_at, key.image_set, policies),
                        key.expires_at)
                 for key in state.keys)
    certs = []
    for cert in state.certificates:
        policy = policies.get(set_of_key.get(cert.key_fingerprint, ""))
        revocation = revoked.get(cert.serial)
        certs.append(CertRow(
            cert.serial, cert.key_fingerprint, set_of_key.get(cert.key_fingerprint, ""),
            cert.not_before, cert.not_after,
            policy.renewal_opens(cert.not_before, cert.not_after) if policy else None,
            revocation[0] if revocation else None, revocation[1] if revocation else "",
            cert.superseded))
    expiring = tuple(c for c in certs if c.status == "current"
                     and c.not_after <= now + EXPIRING_WITHIN)
    crls = tuple(CrlRow(c.role, c.number, c.this_update, c.next_update, c.next_update <= now)
                 for c in state.crls)
    return ReportData(
        generated_at=now, sets=tuple(_set_summaries(state, policies, forecasts)), keys=keys,
        certificates=tuple(certs), crls=crls, actions=tuple(actions),
        notes=tuple(notes(policies)), forecasts=forecasts, tampered=tuple(tampered),
        log=log[0] if log else None, bundle=bundle, expiring=expiring,
        key_publications=tuple(_key_publications(engine, config, state)))


def _key_publications(engine: Engine, config: Config,
                      state: FleetState) -> list[KeyPublicationStatus]:
    in_sets = {key.fingerprint for key in state.keys
               if config.policies.get(key.image_set or "") is not None}
    urls = config.policies.keyservers.urls
    if not urls or not in_sets:
        return []
    return [row for row in key_status(engine, config.key_directory, urls)
            if row.fingerprint in in_sets]


def _key_end(retiring_at: datetime | None, image_set: str | None,
             policies: Policies) -> datetime | None:
    policy = policies.get(image_set or "")
    if retiring_at is None or policy is None:
        return None
    return retiring_at + policy.overlap
