"""``sif-lifecycle bundle export|verify``: carry verification material to air-gapped sites."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lifecycle.cli.common import UtcTime, passphrase_file_option, read_passphrase
from lifecycle.cli.pki_options import ca_service, config_option, open_config

if TYPE_CHECKING:
    from lifecycle.bundles.freshness import StaleOverride

TRUST_STORE = click.option(
    "--trust-store", type=click.Path(file_okay=False, path_type=Path),
    help="Where pinned bundle keys and log checkpoints live (default $SIF_LIFECYCLE_TRUST_STORE or "
         "~/.local/share/sif-lifecycle/bundles).")


ALLOW_STALE = click.option(
    "--allow-stale", metavar="REASON",
    help="Accept an expired bundle anyway, for this reason (printed in a warning). Never the "
         "default; a rolled-back (older) bundle is refused even so.")


def stale_override(reason: str | None) -> StaleOverride | None:
    from lifecycle.bundles.freshness import StaleOverride

    return StaleOverride(reason) if reason is not None else None


def _size(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1024:.1f} KiB"


@click.group()
def bundle() -> None:
    """Export and verify signed verification bundles for offline sites.

    \b
    Example:
      sif-lifecycle bundle export site-bundle.tar.gz
      sif-lifecycle bundle verify site-bundle.tar.gz
      sif-lifecycle verify --bundle site-bundle.tar.gz image.sif
    """


@bundle.command()
@config_option
@passphrase_file_option
@click.option("--images", "images", multiple=True, metavar="SET",
              help="Only the keys that signed this image set: a SIF image, a directory of "
                   "them, or a key fingerprint / DSSE keyid (repeatable; default all keys).")
@click.option("--tlog-db", envvar="SIF_LIFECYCLE_TLOG_DB",
              help="Include this transparency log (SQLite file or URL; env SIF_LIFECYCLE_TLOG_DB; "
                   "default: the configured [tlog], when it is kept in this store).")
@click.option("--tlog-key", type=click.Path(dir_okay=False, path_type=Path),
              envvar="SIF_LIFECYCLE_TLOG_KEY",
              help="The log key, to sign a fresh checkpoint (env SIF_LIFECYCLE_TLOG_KEY; default "
                   "[tlog] key_file, else tlog-key.json).")
@click.option("--validity-days", type=click.IntRange(1, 365), metavar="DAYS",
              help="Days until the bundle expires (default [bundles] validity_days, 7); the "
                   "CRLs and OCSP responses inside are made to cover them, or nothing is written.")
@click.option("--checkpoint-max-age", type=click.IntRange(min=1), metavar="DAYS",
              help="How long the log checkpoint counts as fresh (default: the validity).")
@click.option("--consistency-from", type=click.IntRange(min=1), multiple=True, metavar="SIZE",
              help="Also prove consistency from this earlier log size (sizes of earlier exports "
                   "are included automatically).")
@click.option("--ecl-dirpath", default="", help="dirpath of the ecl.toml execgroup.")
@click.argument("out", type=click.Path(path_type=Path))
def export(config_path: Path | None, passphrase_file: Path | None, images: tuple[str, ...],
           tlog_db: str | None, tlog_key: Path | None, validity_days: int | None,
           checkpoint_max_age: int | None, consistency_from: tuple[int, ...], ecl_dirpath: str,
           out: Path) -> None:
    """Write a signed bundle to OUT: a directory, or a .tar.gz when the name ends so.

    Holds the CA certificates, every leaf certificate generation, CRLs, pre-signed OCSP responses,
    public keys, a PGP keyring, the log's newest checkpoint, a README with stock verify commands
    and an ecl.toml fragment. The manifest is signed by the store's bundle key (made on first
    export). Nothing is written if anything fails.

    \b
    Example:
      sif-lifecycle bundle export --tlog-db tlog.db site-bundle.tar.gz
      sif-lifecycle bundle export --images /srv/images/prod prod-bundle/
    """
    from lifecycle.bundles.exporter import export as export_bundle
    from lifecycle.bundles.exporter import options_for
    from lifecycle.cli.tlog_commands import open_log

    config = open_config(config_path)
    passphrase = read_passphrase(passphrase_file)
    ca = ca_service(config, passphrase)
    log = None
    if tlog_db is not None:
        log = open_log(tlog_db, tlog_key or Path("tlog-key.json"), passphrase_file)
    elif config.tlog is not None and config.tlog.url is None:
        from lifecycle.service.transparency import open_log as open_configured

        log = open_configured(config.tlog.database_url, tlog_key or config.tlog.key_file,
                              passphrase)
    elif config.tlog is not None:
        click.echo(f"WARNING: no tlog/ in the bundle: the configured log is served at "
                   f"{config.tlog.url}; pass --tlog-db and --tlog-key to include it", err=True)
    overrides: dict[str, object] = {"consistency_from": consistency_from,
                                    "ecl_dirpath": ecl_dirpath}
    if validity_days is not None:
        overrides["validity"] = timedelta(days=validity_days)
    if checkpoint_max_age is not None:
        overrides["checkpoint_max_age"] = timedelta(days=checkpoint_max_age)
    options = options_for(config, **overrides)
    selection = None
    if images:
        from lifecycle.bundles.selection import resolve

        selection = resolve(images)
    report = export_bundle(ca, out, log=log, images=selection, options=options)
    if report.created_key:
        click.echo(f"created the bundle-signing key {report.bundle_keyid}", err=True)
    for warning in report.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    click.echo(f"wrote {out}: {report.manifest.file_count} files, {_size(report.total)} "
               f"({_size(report.bytes_on_disk)} on disk)")
    for kind, size in sorted(report.sizes.items()):
        click.echo(f"  {kind:<12} {_size(size)}")
    click.echo(f"version {report.manifest.version}, valid until "
               f"{report.manifest.valid_until.isoformat()}; signed by bundle key "
               f"{report.bundle_keyid}")


@bundle.command()
@TRUST_STORE
@click.option("--trust-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pin this PEM public key as the bundle key (instead of trust on first use).")
@ALLOW_STALE
@click.option("--strict", is_flag=True, hidden=True, help="Accepted for compatibility: an "
              "expired bundle is always refused (see --allow-stale).")
@click.option("--at", type=UtcTime(), help="Judge freshness at this time (default now).")
@click.argument("path", type=click.Path(path_type=Path))
def verify(trust_store: Path | None, trust_key: Path | None, allow_stale: str | None,
           strict: bool, at: datetime | None, path: Path) -> None:
    """Check bundle PATH offline and import it: signature, digests, expiry, version, log.

    The first bundle pins its signing key (trust on first use, reported loudly) unless
    --trust-key pins one; later bundles signed by another key are rejected. A bundle with a
    lower version than one imported before (rollback) is refused, and so is an expired one
    unless --allow-stale gives a reason. A bundle over an older one must prove the
    transparency log only grew. Exit 0 genuine, 1 rejected, 2 bad input.

    \b
    Example:
      sif-lifecycle bundle verify --trust-key bundle-key.pub site-bundle.tar.gz
      sif-lifecycle bundle verify site-bundle.tar.gz
    """
    from lifecycle.bundles.verify import open_bundle

    del strict  # what it asked for is the default now
    opened = open_bundle(path, trust_store=trust_store, trust_key=trust_key, at=at,
                         allow_stale=stale_override(allow_stale))
    for note in opened.notes:
        click.echo(note, err=note.startswith("WARNING"))
    m = opened.manifest
    state = "STALE" if opened.stale else "fresh"
    click.echo(f"bundle {path} verified: version {m.version}, {m.file_count} files, signed by "
               f"{opened.keyid}, created {m.created.isoformat()}, valid until "
               f"{m.valid_until.isoformat()} ({state})")
