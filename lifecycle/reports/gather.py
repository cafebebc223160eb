"""Gather a report's data: the planner's state and plan, plus a few queries the planner skips.

Everything is read in one pass at ``now``; nothing is written. The transparency log (when the
store's database holds one, or ``log_engine`` is given) adds its status and which images it has
evidence for; the audit log's ``bundle.export`` rows (or an outbox directory) give bundle
freshness.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import Engine

# The outbox's reader: the same rule (newest readable bundle) as the exporter's refresh check.
from lifecycle.bundles.exporter import EXPORT_ACTION, _newest
from lifecycle.config import Config, Policies
from lifecycle.errors import LogError
from lifecycle.inventory.fleet import load_state, tampered_images
from lifecycle.inventory.proofs import proven_signers
from lifecycle.model.cert_status import CertStatus, certificate_status
from lifecycle.model.fleet import FleetState, ImageState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageStatus
from lifecycle.reports.checked import LogMaterial, confirm_now, pgp_public_keys
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
from lifecycle.reports.stock_ocsp import StockOcsp, stock_ocsp
from lifecycle.store.key_publications import KeyPublicationStatus, key_status
from lifecycle.store.queries import (
    certificate_pems,
    ephemeral_leaves,
    invalid_since,
    latest_audit,
    latest_certificate_pem,
    latest_crl,
    revocations_by_serial,
)
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

    An entry for an image is not evidence the image carries: forecasts judge images by the
    logged signatures the service recorded when it signed them (``FleetState.logged``).

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


def _stock_ocsp(engine: Engine, config: Config, certs: Sequence[CertRow], now: datetime,
                ) -> list[StockOcsp]:
    """Per set: stock ``--ocsp-verify`` with its newest current certificate and today's CAs."""
    pems = certificate_pems(engine)
    cas = [latest_certificate_pem(engine, role) for role in (CaRole.INTERMEDIATE, CaRole.ROOT)]
    ca_certs = [x509.load_pem_x509_certificate(p.encode()) for p in cas if p is not None]
    out = []
    for policy in config.policies.image_sets:
        current = [c for c in certs if c.image_set == policy.name
                   and c.status == CertStatus.CURRENT and c.not_before <= now < c.not_after]
        newest = max(current, key=lambda c: (c.not_after, c.serial), default=None)
        chain = ([x509.load_pem_x509_certificate(pems[newest.serial].encode()), *ca_certs]
                 if newest is not None else [])
        out.append(stock_ocsp(policy.name, policy.strategy, chain, config.ca.ocsp_responder))
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
    revoked = revocations_by_serial(engine)
    tampered = _tampered(engine, policies)
    bundle = _bundle_status(engine, outbox, now)
    set_of_key = {key.fingerprint: key.image_set or "" for key in state.keys}
    state_of_key = {key.fingerprint: key.state for key in state.keys}
    index = FleetIndex.build(state.keys, state.certificates, actions, ephemeral_leaves(engine),
                             invalid_since(engine))
    proven = proven_signers(engine)
    forecasts = tuple(_forecast(image, policies, state, index, now, proven.get(image.path))
                      for image in state.images if image.status != ImageStatus.REMOVED)
    if verify_images:
        forecasts = confirm_now(forecasts, index.certificates, certificate_pems(engine), now,
                                _log_material(engine, log[0] if log else None),
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
            cert.superseded, certificate_status(
                not_after=cert.not_after, revoked=revocation is not None or cert.revoked,
                superseded=cert.superseded, key_state=state_of_key.get(cert.key_fingerprint),
                now=now)))
    expiring = expiring_soon(certs, keys, index, now)
    crls = tuple(CrlRow(c.role, c.number, c.this_update, c.next_update, c.next_update <= now)
                 for c in state.crls)
    return ReportData(
        generated_at=now, sets=tuple(_set_summaries(state, policies, forecasts)), keys=keys,
        certificates=tuple(certs), crls=crls, actions=tuple(actions),
        notes=tuple(notes(policies)), forecasts=forecasts, tampered=tuple(tampered),
        log=log[0] if log else None, bundle=bundle, expiring=expiring,
        key_publications=tuple(_key_publications(engine, config, state)),
        stock_ocsp=tuple(_stock_ocsp(engine, config, certs, now)))


def _forecast(image: ImageState, policies: Policies, state: FleetState, index: FleetIndex,
              now: datetime, proven: Mapping[str, datetime | None] | None = None) -> Forecast:
    policy = policies.set_for(image.path)
    logged = state.logged.get(policy.identity, frozenset()) if policy is not None and \
        policy.identity else frozenset()
    return forecast(image, policy, index, now, logged=logged, proven=proven)


def expiring_soon(certs: Sequence[CertRow], keys: Sequence[KeyRow], index: FleetIndex,
                  now: datetime) -> tuple[CertRow, ...]:
    """Current certificates that end within ``EXPIRING_WITHIN`` and that nothing planned
    renews in time: what a person must act on."""
    ends = {key.fingerprint: key.ends for key in keys}
    return tuple(c for c in certs if c.status == CertStatus.CURRENT
                 and c.not_after <= now + EXPIRING_WITHIN
                 and not _renewed_in_time(c, index, ends.get(c.key_fingerprint)))


def _renewed_in_time(cert: CertRow, index: FleetIndex, key_ends: datetime | None) -> bool:
    """A planned action renews it (re-issue, rotation) by its ``notAfter``, or its key's
    signatures are dropped before then (a retiring key needs no new certificate)."""
    if key_ends is not None and key_ends <= cert.not_after:
        return True
    planned = (*index.actions.get(cert.serial, ()), *index.actions.get(cert.key_fingerprint, ()))
    return any(a.due <= cert.not_after for a in planned)


def _log_material(engine: Engine, log: LogStatus | None) -> LogMaterial | None:
    """What checks logged signatures now: the log's key, the CA root and the newest CRLs."""
    root = latest_certificate_pem(engine, CaRole.ROOT)
    if log is None or not log.verifier_key or root is None:
        return None
    crls = tuple(der for role in (CaRole.ROOT, CaRole.INTERMEDIATE, CaRole.EPHEMERAL)
                 if (der := latest_crl(engine, role)) is not None)
    return LogMaterial(log.verifier_key, root, crls)


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
