"""Pieces shared by commands: passphrases, progress display, option types."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lifecycle.errors import KeyMaterialError
from lifecycle.files import KEY_LIMIT, read_text
from lifecycle.integrity.keys import PassphraseSource

PASSPHRASE_ENV = "SIF_LIFECYCLE_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

passphrase_file_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File whose first line is the passphrase (else ${PASSPHRASE_ENV}, else a prompt).",
)


def read_passphrase(passphrase_file: Path | None, *, what: str = "key store", confirm: bool = False) -> bytes:
    """From --passphrase-file, then $SIF_LIFECYCLE_PASSPHRASE, then a terminal prompt; never logged.

    ``confirm``: a NEW passphrase is being chosen (asked twice, and it must be long enough).
    """
    if passphrase_file is not None:
        lines = read_text(passphrase_file, limit=KEY_LIMIT, what="passphrase file",
                          error=KeyMaterialError).splitlines()
        if not lines:
            raise KeyMaterialError("cannot read passphrase file: the file is empty", path=passphrase_file)
        text = lines[0]
        source = f"--passphrase-file {passphrase_file}"
    elif os.environ.get(PASSPHRASE_ENV):
        text = os.environ[PASSPHRASE_ENV]
        source = f"${PASSPHRASE_ENV}"
    elif sys.stdin.isatty():
        text = click.prompt(f"Passphrase for {what}", hide_input=True, confirmation_prompt=confirm, err=True)
        source = "the prompt"
    else:
        raise KeyMaterialError(
            f"a passphrase is needed for {what}", hint=f"set {PASSPHRASE_ENV} or pass --passphrase-file"
        )
    if not text:
        raise KeyMaterialError("the passphrase is empty", path=passphrase_file)
    if confirm:
        from lifecycle.pki.keys import check_new_passphrase  # the key store's rules: not for a verify

        check_new_passphrase(text.encode(), source)
    return text.encode()


def passphrase_source(passphrase_file: Path | None) -> PassphraseSource:
    """A source that asks for the passphrase only when a key turns out to be encrypted."""
    return lambda path: read_passphrase(passphrase_file, what=path)


class UtcTime(click.ParamType):  # type: ignore[type-arg]
    """ISO 8601 time; a value without a zone (or a bare date) is taken as UTC."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2029-01-01T12:00:00Z)", param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.utcoffset() is None else parsed.astimezone(UTC)
