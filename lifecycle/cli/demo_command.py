"""``sif-lifecycle demo``: set up a workspace and run three simulated years end to end."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sif-lifecycle-demo"), show_default=True,
              help="Directory to (re)create; an existing directory that is not a demo "
                   "workspace is refused.")
@click.option("--keyserver", metavar="URL", default=None,
              help="Publish the PGP set's key (and each extension) to this HKP keyserver.")
def demo(workspace: Path, keyserver: str | None) -> None:
    """Build a demo workspace and run the planner and applier over three simulated years.

    Creates a config with one image set per strategy (reissue, resign, ephemeral) and a
    reissue set with an OpenPGP key (its expiry extended; published with --keyserver), a SQLite
    store, a CA, a transparency log and a few SIF images; runs three years of actions on a
    simulated clock ending now; writes a report, exports a verification bundle and verifies
    every image offline against it. Exit 1 if any action or verification failed.

    \b
    Example:
      sif-lifecycle demo
      sif-lifecycle demo --workspace /tmp/demo
      sif-lifecycle demo --keyserver hkp://127.0.0.1:11371
    """
    from lifecycle.demo import next_steps, run_demo

    result = run_demo(workspace, click.echo, keyserver=keyserver)
    click.echo(f"done in {result.seconds:.1f} s")
    for line in next_steps(result):
        click.echo(line)
    if not result.ok:
        failed = [str(v.image) for v in result.verified if not v.ok] + [
            f"{a.kind} {a.subject}" for _, a, r in result.history if not r.ok]
        raise click.ClickException(f"demo finished with failures: {', '.join(failed)}")
