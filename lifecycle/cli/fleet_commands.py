"""``track``, ``scan``, ``images``: the inventory; ``plan`` and ``apply``: the lifecycle work."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lifecycle import simulation
from lifecycle.cli.common import UtcTime, passphrase_file_option, read_passphrase
from lifecycle.cli.many import jobs_option
from lifecycle.cli.pki_options import ca_service, config_option, open_config
from lifecycle.clock import utc_now
from lifecycle.config import Config
from lifecycle.errors import LifecycleError
from lifecycle.inventory.fleet import list_images, load_state
from lifecycle.inventory.scan import ScanReport, scan
from lifecycle.model.fleet import Action
from lifecycle.store.migrate import open_store
from lifecycle.strategies.apply import ApplyContext
from lifecycle.strategies.due import run_due
from lifecycle.strategies.plan import due_now, notes, plan

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_AT = click.option("--at", "at", type=UtcTime(), default=None,
                   help="Act as if it were this time (ISO 8601, UTC by default); default now.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _now(at: datetime | None) -> datetime:
    return at or utc_now()


def _print_scan(report: ScanReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(f"{report.scanned} image(s): {len(report.new)} new, {len(report.changed)} "
               f"changed, {report.unchanged} unchanged, {len(report.removed)} removed")
    for path in report.tampered:
        click.echo(f"TAMPERED {path}: its signatures changed or no longer match (see "
                   "'sif-lifecycle report'); it will not be signed")
    for error in report.errors:
        click.echo(f"skipped {error}", err=True)


@click.command()
@config_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_JSON
@_AT
@jobs_option
def track(config_path: Path | None, paths: tuple[Path, ...], as_json: bool,
          at: datetime | None, jobs: int | None) -> None:
    """Register SIF images (files or directories) in the inventory, reading them in full.

    Records size, SIF id, groups, every signature (format, signer, covered objects) and the
    digest of every object as first seen. A file that is not a SIF image is an error (exit 2).
    Tracking again registers an image as it is now (the way out of 'tampered' once it is
    restored): signatures it lost are not held against it, a foreign signer still is (exit 1).

    \b
    Example:
      sif-lifecycle track /srv/images/app-1.0.sif /srv/images/base/
    """
    config = open_config(config_path)
    engine = open_store(config.database_url)
    report = scan(engine, [str(p) for p in paths], _now(at), full=True,
                  strict=True, policies=config.policies, jobs=jobs)
    _timestamp_new(config, engine, report.new, _now(at), as_json)
    _print_scan(report, as_json)
    if report.tampered:
        raise SystemExit(1)


def _timestamp_new(config: Config, engine: Engine, new: list[str], now: datetime,
                   as_json: bool) -> None:
    """With ``[timestamp] urls``: tokens for the DSSE signatures of newly tracked images that
    carry none (only those signatures' extensions change), then the images registered so."""
    from lifecycle.timestamp.client import configured
    from lifecycle.timestamp.restamp import restamp

    stamper = configured(config.timestamp)
    if stamper is None or not new:
        return
    stamped = [(path, restamp(path, stamper)) for path in new]
    changed = [path for path, count in stamped if count]
    if changed:
        scan(engine, changed, now, full=True, strict=True, policies=config.policies)
    if not as_json:
        for path, count in stamped:
            if count:
                click.echo(f"timestamped {count} signature(s) of {path}", err=True)


@click.command("scan")
@config_option
@click.argument("roots", nargs=-1, type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="Re-read and re-check every image, changed or not.")
@_JSON
@_AT
@jobs_option
def scan_command(config_path: Path | None, roots: tuple[Path, ...], full: bool, as_json: bool,
                 at: datetime | None, jobs: int | None) -> None:
    """Update the inventory: new, changed, removed and tampered images.

    Without ROOTS, scans the path globs of every [[image_sets]] table of the config. Unchanged
    files (same size, mtime and inode) are not opened unless --full is given. An image is
    tampered when its signatures no longer match its content, when it was seen signed and
    carries no signature now, or when a signer is not its set's (not one of the set's keys;
    for an ephemeral set, a new signer on an image seen signed). A tampered image is never
    signed; it gets an audit record (image.tampered) and is listed by 'report'. Exit 1 when an
    image was found tampered.

    \b
    Example:
      sif-lifecycle scan                       # the configured image sets
      sif-lifecycle scan --full /srv/images
    """
    config = open_config(config_path)
    targets = [str(r) for r in roots] or config.policies.scan_roots()
    if not targets:
        raise LifecycleError("nothing to scan", hint="give ROOTS or configure [[image_sets]]")
    report = scan(open_store(config.database_url), targets, _now(at), full=full,
                  policies=config.policies, jobs=jobs)
    _print_scan(report, as_json)
    if report.tampered:
        raise SystemExit(1)


@click.command()
@config_option
@_JSON
def images(config_path: Path | None, as_json: bool) -> None:
    """List the inventory: every image, its status, image set and signers.

    \b
    Example:
      sif-lifecycle images --json
    """
    config = open_config(config_path)
    out: list[dict[str, Any]] = []
    for image in list_images(open_store(config.database_url)):
        policy = config.policies.set_for(image.path)
        out.append({"path": image.path, "status": image.status.value,
                    "image_set": policy.name if policy else None, "sif_id": image.sif_id,
                    "signers": list(image.signers),
                    "last_verified": image.last_verified.isoformat()
                    if image.last_verified else None})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for item in out:
        click.echo(f"{item['status']:<9} {item['image_set'] or '-':<12} {item['path']}  "
                   f"signed by {', '.join(item['signers']) or 'nobody'}")


def _plan(config: Config, now: datetime) -> list[Action]:
    engine = open_store(config.database_url)
    state = load_state(engine, now, config.policies.publish_directories(),
                       config.key_directory)
    return plan(state, config.policies, now)


def _print_plan(actions: list[Action], now: datetime, as_json: bool, config: Config) -> None:
    if as_json:
        click.echo(json.dumps({"at": now.isoformat(), "notes": notes(config.policies),
                               "actions": [a.to_dict() | {"ready": a.ready(now)}
                                           for a in actions]}, indent=2))
        return
    for note in notes(config.policies):
        click.echo(f"note: {note}", err=True)
    if not actions:
        click.echo("nothing to do")
    for action in actions:
        when = "now" if action.ready(now) else action.not_before.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{when:<16} {action.kind:<11} {action.image_set or '-':<12} "
                   f"due {action.due.strftime('%Y-%m-%d')}  {action.reason}")


@click.command("plan")
@config_option
@_AT
@_JSON
def plan_command(config_path: Path | None, at: datetime | None, as_json: bool) -> None:
    """Show what the lifecycle policies call for at a time: now, or --at a future date.

    Each line is an action with the time its window opens ('now' when already open), its
    deadline, and why. Nothing is changed.

    \b
    Example:
      sif-lifecycle plan --at 2029-01-01
      sif-lifecycle plan --json
    """
    config = open_config(config_path)
    now = _now(at)
    _print_plan(_plan(config, now), now, as_json, config)


@click.command("apply")
@config_option
@passphrase_file_option
@_AT
@click.option("--dry-run", is_flag=True, help="Only list the actions that would run.")
@click.option("--simulate", "simulate", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Copy the store, keys, log key, publish directories and images "
              "into this new directory and apply there (the real ones are not touched).")
@_JSON
def apply_command(config_path: Path | None, passphrase_file: Path | None, at: datetime | None,
                  dry_run: bool, simulate: Path | None, as_json: bool) -> None:
    """Execute every action whose window is open, one by one, re-planning after each round.

    Every action re-checks the store first (applying twice changes nothing) and lands in the
    audit log. Exit 1 when an action was refused (a tampered image) or failed. A future --at
    (beyond 5 minutes of clock skew) needs --dry-run or --simulate DIR: it never changes the
    real store. Continue a simulation with --config DIR/config.toml.

    \b
    Example:
      sif-lifecycle apply --dry-run
      SIF_LIFECYCLE_PASSPHRASE=... sif-lifecycle apply
      sif-lifecycle apply --at 2030-01-01 --simulate /tmp/in-2030
    """
    config = open_config(config_path)
    now = _now(at)
    if simulate is not None and not dry_run:
        config_path = simulation.create(config, config_path, simulate)
        config = open_config(config_path)
        if not as_json:
            click.echo(f"simulating in {simulate} (the real store is not changed); continue "
                       f"with --config {config_path}", err=True)
    elif not dry_run:
        simulation.guard_future(now, utc_now())
    if dry_run:
        _print_plan(due_now(_plan(config, now), now), now, as_json, config)
        return
    ca = ca_service(config, read_passphrase(passphrase_file))
    from lifecycle.service.transparency import config_log_client

    log = config_log_client(config, ca.passphrase)
    from lifecycle.timestamp.client import configured

    stamper = configured(config.timestamp)
    results = run_due(ApplyContext(ca.engine, config.policies, ca, log,
                                   (lambda _now: stamper) if stamper else None), now)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            click.echo(f"{r.status:<8} {r.kind:<11} {r.subject}  {r.detail}")
        if not results:
            click.echo("nothing to do")
    if any(not r.ok for r in results):
        raise SystemExit(1)
