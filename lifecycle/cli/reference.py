"""Generate docs/cli.md from the command tree itself, so the CLI reference cannot drift.

Run ``python -m lifecycle.cli.reference > docs/cli.md``; a test fails when the file is stale.
"""

from __future__ import annotations

import sys

import click

from lifecycle.cli.main import cli


def _commands(group: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, group)]
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name=path[-1])
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None and not command.hidden:
                found += _commands(command, [*path, name])
    return found


def _section(path: list[str], command: click.Command) -> str:
    """The command's own ``--help`` text, at a fixed width so the output is reproducible."""
    ctx = click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100)
    heading = "#" * min(len(path) + 1, 4)
    return f"{heading} `{' '.join(path)}`\n\n```text\n{command.get_help(ctx)}\n```\n"


def render() -> str:
    header = (
        "# CLI reference\n\n"
        "Generated from the command tree by `python -m lifecycle.cli.reference > docs/cli.md`;\n"
        "CI fails when this file is stale. Exit codes everywhere: 0 success, 1 verification failed,\n"
        "2 usage or input error. Shell completion: `eval \"$(_SIF_LIFECYCLE_COMPLETE=bash_source "
        "sif-lifecycle)\"` (zsh: `zsh_source`, fish: `fish_source`).\n"
    )
    body = "\n".join(_section(path, command) for path, command in _commands(cli, ["sif-lifecycle"]))
    return f"{header}\n{body}"


if __name__ == "__main__":
    sys.stdout.write(render())
