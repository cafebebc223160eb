"""The ``sif-lifecycle`` command: a thin layer that parses options and renders results.

Exit codes: 0 success, 1 verification failed, 2 usage or input error. Every expected failure is a
:class:`LifecycleError` printed as one line naming the file and the fix.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from lifecycle import __version__
from lifecycle.errors import LifecycleError

COMMANDS = {
    "sif": "lifecycle.cli.sif_commands:sif",
    "sign": "lifecycle.cli.sign_commands:sign",
    "verify": "lifecycle.cli.sign_commands:verify",
    "key": "lifecycle.cli.key_commands:key",
    "ca": "lifecycle.cli.ca_commands:ca",
    "serve": "lifecycle.cli.serve_commands:serve",
    "tlog": "lifecycle.cli.tlog_commands:tlog",
    "db": "lifecycle.cli.db_commands:db",
    "bundle": "lifecycle.cli.bundle_commands:bundle",
    "track": "lifecycle.cli.fleet_commands:track",
    "scan": "lifecycle.cli.fleet_commands:scan_command",
    "images": "lifecycle.cli.fleet_commands:images",
    "plan": "lifecycle.cli.fleet_commands:plan_command",
    "apply": "lifecycle.cli.fleet_commands:apply_command",
    "report": "lifecycle.cli.report_commands:report",
    "demo": "lifecycle.cli.demo_command:demo",
}
"""Subcommands, imported only when used: a `verify` should not pay for the CA's imports."""


class LifecycleGroup(click.Group):
    """Loads subcommands lazily; turns LifecycleError into one line and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LifecycleError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LifecycleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sif-lifecycle")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="How much to log on stderr.",
)
def cli(log_level: str) -> None:
    """Keep signed SIF container images verifiable for years.

    \b
    Example:
      sif-lifecycle sif list image.sif
      sif-lifecycle sign --key signing.pem image.sif
      sif-lifecycle verify --key signing.pub image.sif
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="sif-lifecycle", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
