"""The ``sif-lifecycle`` command: a thin layer that parses options and renders results.

Every expected failure is a :class:`LifecycleError` printed as one line naming the file and the
fix, by :mod:`lifecycle.cli.failure`. The installed command starts in :mod:`lifecycle.cli.quick`,
which runs the common ``verify --key`` without loading click.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from lifecycle._version import __version__
from lifecycle.cli.failure import DEBUG_ENV, report_error
from lifecycle.errors import ExitCode

EXIT_CODES = {
    ExitCode.OK: "success",
    ExitCode.CHECK_FAILED: "a check ran and failed: a signature or certificate did not verify, a log "
                           "proof or bundle was rejected, an image was tampered with, an action failed",
    ExitCode.BAD_INPUT: "bad usage, input or environment, to fix before running again: an option, "
                        "file, key, config, a database that is missing, not migrated or unreachable, "
                        "a port in use",
    ExitCode.BUG: f"an unexpected error inside sif-lifecycle, a bug (EX_SOFTWARE): it is one line; "
                  f"run again with `{DEBUG_ENV}=1` for the traceback and report it",
    ExitCode.INTERRUPTED: "stopped by Ctrl-C",
}
"""What each exit status (:class:`lifecycle.errors.ExitCode`) means, for the CLI reference."""


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
    "ecl": "lifecycle.cli.ecl_command:ecl",
    "track": "lifecycle.cli.fleet_commands:track",
    "scan": "lifecycle.cli.fleet_commands:scan_command",
    "images": "lifecycle.cli.fleet_commands:images",
    "plan": "lifecycle.cli.fleet_commands:plan_command",
    "apply": "lifecycle.cli.fleet_commands:apply_command",
    "report": "lifecycle.cli.report_commands:report",
    "demo": "lifecycle.cli.demo_command:demo",
    "actions": "lifecycle.cli.ops_commands:actions",
    "alerts": "lifecycle.cli.ops_commands:alerts",
}
"""Subcommands, imported only when used: a `verify` should not pay for the CA's imports."""

SUMMARIES = {
    "sif": "Inspect and edit SIF container files.",
    "sign": "Sign the object groups of IMAGE (all groups by default).",
    "verify": "Verify the signatures of each IMAGE.",
    "key": "Signing keys, encrypted at rest in the key directory.",
    "ca": "The local CA: root, intermediate, code-signing certificates, revocation, CRLs.",
    "serve": "Run the service: scheduled scan, plan+apply and CRL jobs, OCSP/CRL/health endpoints.",
    "tlog": "Run the local transparency log: entries, checkpoints, proofs.",
    "db": "Create and migrate the database (SQLite file or PostgreSQL).",
    "bundle": "Export and verify signed verification bundles for offline sites.",
    "ecl": "Print an ecl.toml for SingularityCE / Apptainer from the PGP image sets.",
    "track": "Register SIF images (files or directories) in the inventory, reading them in full.",
    "scan": "Update the inventory: new, changed, removed and tampered images.",
    "images": "List the inventory: every image, its status, image set and signers.",
    "plan": "Show what the lifecycle policies call for at a time: now, or --at a future date.",
    "apply": "Execute every action whose window is open, one by one, re-planning after each round.",
    "report": "Report keys, certificates, CRLs, planned actions and, per image, until when it verifies.",
    "demo": "Build a demo workspace and run the planner and applier over three simulated years.",
    "actions": "List the service's queued, running and failed actions, with attempts and last error.",
    "alerts": "Print the Prometheus alert rules, with thresholds from the configuration.",
}
"""First sentence of each subcommand's help, so that ``--help`` lists them without importing
every command module (tests/unit/test_startup.py checks them against the commands)."""


class LifecycleGroup(click.Group):
    """Loads subcommands lazily; ends every run with one line and the status of :func:`exit_code`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if any(name not in SUMMARIES for name in names):  # a command without a summary: load all
            return super().format_commands(ctx, formatter)
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit))
                                for name in names])

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:  # the caller handles exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            # commands return None, so an int is the status of ctx.exit(), --help or --version
            status = super().main(args, prog_name, complete_var, False, **extra)
        except (Exception, KeyboardInterrupt) as exc:
            status = report_error(exc)
        sys.exit(int(status) if isinstance(status, int) else ExitCode.OK.value)


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
    import logging  # not at module level: --help and the subcommands' help do not log

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="sif-lifecycle")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
