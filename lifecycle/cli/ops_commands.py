"""``sif-lifecycle actions`` (the shared work queue: what waits, runs and failed, and retrying it)
and ``sif-lifecycle alerts`` (the Prometheus rules for a configuration)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lifecycle.cli.pki_options import config_option, open_config
from lifecycle.clock import utc_now
from lifecycle.errors import ConfigError

if TYPE_CHECKING:
    from lifecycle.store.queue import WorkQueue

_SHOWN = ("pending", "claimed", "failed")


def _queue(config_path: Path | None) -> WorkQueue:
    from lifecycle.store.migrate import open_store
    from lifecycle.store.queue import WorkQueue

    config = open_config(config_path)
    return WorkQueue(open_store(config.database_url), max_attempts=config.serve.max_attempts)


@click.group(invoke_without_command=True)
@config_option
@click.option("--state", "states", multiple=True, type=click.Choice(["pending", "claimed", "failed", "done"]),
              help="Only items in this state (repeatable; default: pending, claimed, failed).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
@click.pass_context
def actions(ctx: click.Context, config_path: Path | None, states: tuple[str, ...],
            as_json: bool) -> None:
    """List the service's queued, running and failed actions, with attempts and last error.

    \b
    Example:
      sif-lifecycle actions --config lifecycle.toml
      sif-lifecycle actions --state failed --config lifecycle.toml
      sif-lifecycle actions retry 12 --config lifecycle.toml
      sif-lifecycle actions retry --all-failed --config lifecycle.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    from lifecycle.store.queue import WorkState

    queue = _queue(config_path)
    items = queue.items([WorkState(s) for s in (states or _SHOWN)])
    for item in items:
        result = json.loads(item.result) if item.result else {}
        error = result.get("error", "") if isinstance(result, dict) else ""
        if as_json:
            click.echo(json.dumps({"id": item.id, "key": item.key, "kind": item.kind,
                                   "state": item.state, "attempts": item.attempts,
                                   "due": item.due.isoformat(), "claimed_by": item.claimed_by,
                                   "reason": json.loads(item.action).get("reason", ""),
                                   "error": error}, sort_keys=True))
            continue
        reason = json.loads(item.action).get("reason", "")
        click.echo(f"#{item.id} {item.state:<8} {item.kind:<14} attempts={item.attempts} "
                   f"due={item.due.isoformat()} {item.key}")
        if reason:
            click.echo(f"    why: {reason}")
        if error and item.state != WorkState.DONE:
            click.echo(f"    last error: {error}")
    if not items and not as_json:
        click.echo("no actions in " + ", ".join(states or _SHOWN))


@actions.command()
@config_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Every failed action.")
def retry(config_path: Path | None, ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed actions again, after their cause is fixed (fresh attempts, due now).

    An action that is not failed (already retried, or done) is left alone, so it is applied
    once however often this runs. A running serve picks the actions up within its poll interval.

    \b
    Example:
      sif-lifecycle actions retry 12 13 --config lifecycle.toml
      sif-lifecycle actions retry --all-failed --config lifecycle.toml
    """
    if bool(ids) == all_failed:
        raise click.UsageError("give action IDs or --all-failed (one of them)")
    queue = _queue(config_path)
    keys = queue.retry(None if all_failed else ids, utc_now(), by=getpass.getuser())
    for key in keys:
        click.echo(f"queued again: {key}")
    if not keys:
        raise ConfigError("no failed action " + ("in the queue" if all_failed else
                          f"with ID {', '.join(map(str, ids))}"),
                          hint="`sif-lifecycle actions --state failed` lists them")


@click.command()
@config_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rules to this file (default: standard output).")
def alerts(config_path: Path | None, output: Path | None) -> None:
    """Print the Prometheus alert rules, with thresholds from the configuration.

    The thresholds follow the image sets' renewal windows and key rotation, the CRL lifetime,
    the job intervals and [alerts]; regenerate the file after changing the configuration.
    config/alerts.yml is this output for config/sif-lifecycle.example.toml.

    \b
    Example:
      sif-lifecycle alerts --config lifecycle.toml -o /etc/prometheus/rules/sif-lifecycle.yml
      promtool check rules /etc/prometheus/rules/sif-lifecycle.yml
    """
    from lifecycle.service.alerts import render

    text = render(open_config(config_path))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
