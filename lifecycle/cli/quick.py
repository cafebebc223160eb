"""Where the installed ``sif-lifecycle`` starts: ``verify --key K IMAGE`` runs here, without click.

The command run most often, by people and by scheduled jobs, is a key verification of one image,
and for a small image start-up is nearly all of its time: click and the modules it loads cost
more than the check itself (docs/performance.md). :func:`main` runs that one form with the
click command's own pieces: the same :class:`~lifecycle.verify.TrustMaterial`, the same renderer
(:func:`~lifecycle.cli.verify_output.verify_and_show`) and the same error handling
(:mod:`lifecycle.cli.failure`). Every other command line goes to click untouched: another
command or option, ``--help``, several images, a file that is missing or not a regular file
(click's own message then says so). tests/unit/test_quick_verify.py runs both paths on the same
command lines and requires the same output and exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pathlib and the rest load only once the command line is one this path runs
    from pathlib import Path

    from lifecycle.errors import ExitCode
    from lifecycle.verify import TrustMaterial

VALUE_OPTIONS = {"--key": "keys", "--policy": "policy"}
"""The options with a value this path knows, by name: each is the click option of that name."""
FLAG_OPTIONS = {"--json": "as_json"}
"""The flags this path knows."""


class QuickVerify(NamedTuple):
    """A ``verify`` command line this path runs: keys, one image, a policy, maybe ``--json``.

    A named tuple, not a dataclass: generating a dataclass's methods costs start-up time.
    """

    keys: tuple[Path, ...]
    image: Path
    policy: str = "all"
    as_json: bool = False


def _readable_file(path: str) -> bool:
    """What click's ``Path(exists=True, dir_okay=False)`` accepts, narrowed to regular files."""
    return os.path.isfile(path) and os.access(path, os.R_OK)  # noqa: PTH113 - before pathlib loads


def parse(argv: Sequence[str]) -> QuickVerify | None:
    """The command line as a :class:`QuickVerify`, or None for anything this path does not run."""
    if not argv or argv[0] != "verify":
        return None
    values: dict[str, list[str]] = {name: [] for name in VALUE_OPTIONS.values()}
    flags: set[str] = set()
    images: list[str] = []
    tokens = iter(argv[1:])
    for token in tokens:
        name, equals, value = token.partition("=")
        if name in VALUE_OPTIONS:
            if not equals:
                value = next(tokens, "")
            if not value or value.startswith("-"):
                return None  # click says what is wrong
            values[VALUE_OPTIONS[name]].append(value)
        elif token in FLAG_OPTIONS:
            flags.add(FLAG_OPTIONS[token])
        elif token.startswith("-"):
            return None  # an option of the full command, "-" or "--"
        else:
            images.append(token)
    keys, policies = values["keys"], values["policy"]
    if len(images) != 1 or not keys or len(policies) > 1:
        return None
    if not all(map(_readable_file, [*keys, *images])):
        return None
    from pathlib import Path

    return QuickVerify(keys=tuple(map(Path, keys)), image=Path(images[0]),
                       policy=policies[0] if policies else "all", as_json="as_json" in flags)  # fmt: skip


def trust(command: QuickVerify) -> TrustMaterial:
    """The trust material the click command builds for the same command line (a test compares)."""
    from lifecycle.integrity.policy import Policy
    from lifecycle.verify import TrustMaterial

    return TrustMaterial(keys=command.keys, policy=Policy.parse(command.policy))


def run(command: QuickVerify) -> ExitCode:
    """Verify, print as the click command prints, and return the exit status."""
    from lifecycle.cli.failure import report_error
    from lifecycle.cli.verify_output import verify_and_show
    from lifecycle.errors import ExitCode

    try:
        verify_and_show(command.image, trust(command), command.as_json)
    except (Exception, KeyboardInterrupt) as exc:
        return report_error(exc)
    return ExitCode.OK


def main() -> None:
    """The ``sif-lifecycle`` entry point."""
    argv = sys.argv[1:]
    command = parse(argv)
    if command is not None:
        sys.exit(run(command).value)
    from lifecycle.cli.main import main as full

    full(argv)
