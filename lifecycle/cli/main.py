"""The ``sif-lifecycle`` command: a thin layer that parses options and renders results.

Exit codes: 0 success, 1 verification failed, 2 usage or input error. Every expected failure is a
:class:`LifecycleError` printed as one line naming the file and the fix.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from lifecycle import __version__
from lifecycle.errors import LifecycleError


class LifecycleGroup(click.Group):
    """Turns LifecycleError into a one-line message and its exit code instead of a traceback."""

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


def _register() -> None:
    from lifecycle.cli import (
        ca_commands,
        db_commands,
        key_commands,
        sif_commands,
        sign_commands,
        tlog_commands,
    )

    cli.add_command(sif_commands.sif)
    cli.add_command(sign_commands.sign)
    cli.add_command(sign_commands.verify)
    cli.add_command(key_commands.key)
    cli.add_command(ca_commands.ca)
    cli.add_command(ca_commands.serve)
    cli.add_command(tlog_commands.tlog)
    cli.add_command(db_commands.db)


_register()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="sif-lifecycle", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
