"""``sif-lifecycle serve``: the scheduled service plus its HTTP endpoints (OCSP, CRLs, log, /healthz)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from lifecycle.cli.common import passphrase_file_option, read_passphrase
from lifecycle.cli.pki_options import ca_service, config_option, open_config
from lifecycle.config import parse_listen


def _level() -> int:
    """The global --log-level, except that a service logs at info unless told otherwise."""
    root = click.get_current_context().find_root()
    if root.get_parameter_source("log_level") == click.core.ParameterSource.DEFAULT:
        return logging.INFO
    return logging.getLogger().level


@click.command()
@config_option
@passphrase_file_option
@click.option("--listen", help="HOST:PORT (default from the config, 127.0.0.1:8080; port 0: any).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line, for a log collector.")
@click.option("--tlog-db", envvar="SIF_LIFECYCLE_TLOG_DB", default=None,
              help="Also serve this transparency log at /tlog/ (SQLite file or URL; "
                   "env SIF_LIFECYCLE_TLOG_DB).")
@click.option("--tlog-key", envvar="SIF_LIFECYCLE_TLOG_KEY", default="tlog-key.json",
              show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The log key file (env SIF_LIFECYCLE_TLOG_KEY).")
@click.option("--tlog-token-file", envvar="SIF_LIFECYCLE_TLOG_TOKEN_FILE", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Bearer token that POST /tlog/entries must carry (default: [tlog] "
                   "append_token_file; without either, appends over HTTP are refused; env "
                   "SIF_LIFECYCLE_TLOG_TOKEN_FILE).")
@click.option("--no-ca", is_flag=True, help="Do not serve OCSP and CRLs (e.g. a log-only instance).")
def serve(config_path: Path | None, passphrase_file: Path | None, listen: str | None,
          log_format: str, tlog_db: str | None, tlog_key: Path, tlog_token_file: Path | None,
          no_ca: bool) -> None:
    """Run the service: scheduled scan, plan+apply and CRL jobs, OCSP/CRL/health endpoints.

    Also /metrics (Prometheus), /healthz (``degraded`` with reasons when work failed or material
    goes stale; 503 only when the instance cannot work) and /readyz (503 unless ``ok``); with
    a [notify] table, a notify job sends the same conditions (docs/operations.md).

    Runs until SIGTERM or SIGINT, then finishes the actions in progress (at most
    [serve] shutdown_timeout) and exits 0. Several instances may share one PostgreSQL database.

    \b
    Example:
      sif-lifecycle db upgrade --config lifecycle.toml
      sif-lifecycle serve --config lifecycle.toml --listen 127.0.0.1:8080 --log-format json
      curl http://127.0.0.1:8080/healthz
      sif-lifecycle serve --no-ca --tlog-db tlog.db --tlog-key tlog-key.json
    """
    from lifecycle.service import logs
    from lifecycle.service.http import HttpLimits, RevocationSource, start_http
    from lifecycle.service.runner import Service, check_schema
    from lifecycle.service.work import SourceContext, initialized_ca, load_source

    logs.configure(log_format, _level())
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    config = open_config(config_path)
    host, port = parse_listen(listen) if listen else (config.listen_host, config.listen_port)
    check_schema(config.database_url)
    passphrase = read_passphrase(passphrase_file)
    store_ca = ca_service(config, passphrase)
    engine = store_ca.engine
    ca = initialized_ca(store_ca)
    source = load_source(config.serve.work_source, SourceContext(config, engine, passphrase, ca))
    from lifecycle.service.operations import Operations

    operations = Operations(engine, config)
    service = Service(engine, source, config.serve, operations=operations)

    endpoints = None
    if tlog_db is not None:
        from lifecycle.service.transparency import log_endpoints
        from lifecycle.store.ca_service import EPHEMERAL

        signing_ca = store_ca  # appended entries' certificates must come from its ephemeral CA
        if tlog_token_file is None and config.tlog is not None:
            tlog_token_file = config.tlog.append_token_file
        endpoints = log_endpoints(
            tlog_db, tlog_key, passphrase, token_file=tlog_token_file,
            issuers=lambda: [signing_ca.certificate(EPHEMERAL)] if signing_ca.has_role(
                EPHEMERAL) else [])
    revocation = RevocationSource(ca) if ca is not None and not no_ca else None
    limits = HttpLimits(config.serve.max_connections, config.serve.idle_timeout,
                        config.serve.max_request_bytes)
    tsa = None
    if ca is not None and not no_ca and config.timestamp is not None:
        from lifecycle.clock import utc_now
        from lifecycle.store.tsa_service import local_tsa

        tsa = local_tsa(ca, utc_now, accuracy=config.timestamp.accuracy).respond
    running = start_http(revocation, host, port, log_endpoints=endpoints, health=service.health,
                         limits=limits, tsa=tsa, metrics=operations.metrics)
    service.start()
    if log_format == "text":  # in json mode the http.listening event carries the address
        click.echo(f"serving on {running.url} (SIGTERM or Ctrl-C to stop)", err=True)
    while not stop.wait(0.5):
        pass
    clean = service.stop(config.serve.shutdown_timeout.total_seconds())
    running.stop()
    engine.dispose()
    if not clean:  # a job thread is still busy: its claim will expire; do not wait for it
        logging.shutdown()
        os._exit(0)
