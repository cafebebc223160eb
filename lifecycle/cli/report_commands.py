"""``sif-lifecycle report``: what expires when, which images stop verifying when, what is planned."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from lifecycle.cli.common import UtcTime
from lifecycle.cli.pki_options import config_option, open_config
from lifecycle.clock import utc_now
from lifecycle.errors import LogError
from lifecycle.reports import FORMATS, build_report, render
from lifecycle.reports.render import write_rendered
from lifecycle.store.db import make_engine
from lifecycle.store.migrate import open_store


@click.command("report")
@config_option
@click.option("--at", "at", type=UtcTime(), default=None,
              help="Report as of this time (ISO 8601, UTC by default); default now.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True,
              help="html: one self-contained page with a timeline; md: Markdown; json: data.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (atomically) instead of to stdout.")
@click.option("--tlog-db", envvar="SIF_LIFECYCLE_TLOG_DB", default=None,
              help="Report on this transparency log too (SQLite file or URL; env "
                   "SIF_LIFECYCLE_TLOG_DB).")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Bundle outbox directory: its newest bundle gives bundle freshness "
                   "(default: the newest export in the audit log).")
@click.option("--verify-images/--no-verify-images", default=True, show_default=True,
              help="Confirm every 'verifies now' claim by verifying the image (one read of "
                   "each); --no-verify-images forecasts from the store alone (large fleets).")
def report(config_path: Path | None, at: datetime | None, fmt: str, out: Path | None,
           tlog_db: str | None, outbox: Path | None, verify_images: bool) -> None:
    """Report keys, certificates, CRLs, planned actions and, per image, until when it verifies.

    The forecast says until when each image verifies with stock 'singularity verify
    --certificate', with '--key', and with sif-lifecycle, and which planned action keeps it
    verifiable. Nothing is changed.

    \b
    Example:
      sif-lifecycle report --out report.html
      sif-lifecycle report --format md --at 2029-01-01
      sif-lifecycle report --format json | jq '.forecasts[].tool'
    """
    config = open_config(config_path)
    log_engine = None
    if tlog_db is not None:
        if "://" not in tlog_db and not Path(tlog_db).is_file():
            raise LogError("no such log database", path=tlog_db,
                           hint="give the file 'sif-lifecycle tlog init --db' created")
        log_engine = make_engine(tlog_db if "://" in tlog_db else f"sqlite:///{tlog_db}")
    data = build_report(open_store(config.database_url), config, at or utc_now(),
                        log_engine=log_engine, outbox=outbox, verify_images=verify_images)
    if out is None:
        click.echo(render(data, fmt).decode(), nl=False)
    else:
        write_rendered(data, fmt, out)
        click.echo(f"wrote {out}", err=True)
