"""Generate docs/cli.md from the command tree itself, so the CLI reference cannot drift.

Run ``python -m lifecycle.cli.reference > docs/cli.md``; a test fails when the file is stale.
"""

from __future__ import annotations

import sys

import click

from lifecycle.cli.main import EXIT_CODES, cli


def _contexts(command: click.Command, name: str, parent: click.Context | None) -> list[click.Context]:
    """Contexts as a real invocation builds them (parents pass settings such as ``-h`` down)."""
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=100,
                        max_content_width=100, **command.context_settings)  # fmt: skip
    found = [ctx]
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                found += _contexts(sub, sub_name, ctx)
    return found


def _section(ctx: click.Context) -> str:
    """The command's own ``--help`` text, at a fixed width so the output is reproducible."""
    path = ctx.command_path
    heading = "#" * min(path.count(" ") + 2, 4)
    return f"{heading} `{path}`\n\n```text\n{ctx.command.get_help(ctx)}\n```\n"


def render() -> str:
    header = (
        "# CLI reference\n\n"
        "Generated from the command tree by `python -m lifecycle.cli.reference > docs/cli.md`;\n"
        "CI fails when this file is stale. Shell completion: `eval \"$(_SIF_LIFECYCLE_COMPLETE=bash_source "
        "sif-lifecycle)\"` (zsh: `zsh_source`, fish: `fish_source`).\n\n"
        "Exit status, the same for every command (an error is one line on stderr, `Error: ...`):\n\n"
        "| status | meaning |\n|---|---|\n"
        + "".join(f"| {int(code)} | {meaning} |\n" for code, meaning in EXIT_CODES.items())
    )
    body = "\n".join(_section(ctx) for ctx in _contexts(cli, "sif-lifecycle", None))
    return f"{header}\n{body}"


if __name__ == "__main__":
    sys.stdout.write(render())
