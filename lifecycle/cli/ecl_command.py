"""``sif-lifecycle ecl``: print the ecl.toml that admits the current PGP keys of each image set."""

from __future__ import annotations

from pathlib import Path

import click

from lifecycle.cli.pki_options import config_option, emit, key_service, open_config


@click.command("ecl")
@config_option
@click.option("--tagname", default="sif-lifecycle", show_default=True,
              help="Tag name of the execgroups (suffixed with the set names when there are "
                   "several).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (atomically) instead of to stdout.")
def ecl(config_path: Path | None, tagname: str, out: Path | None) -> None:
    """Print an ecl.toml for SingularityCE / Apptainer from the PGP image sets.

    One whitelist [[execgroup]] per directory, with the fingerprints of each PGP set's pending,
    active and retiring keys; dirpath is the set's directory when all its globs name files in
    one directory, else "" (any directory). Sets signed with PEM keys are named in a comment:
    the ECL holds PGP fingerprints only. With no PGP fingerprint the list stays deactivated.
    No passphrase is needed and nothing is changed.

    \b
    Example:
      sif-lifecycle ecl --out /etc/singularity/ecl.toml
    """
    from lifecycle.bundles.ecl import bundle_ecl

    config = open_config(config_path)
    emit(bundle_ecl(key_service(config), tagname=tagname, policies=config.policies), out)
