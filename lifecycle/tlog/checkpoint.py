"""C2SP ``tlog-checkpoint``: the log's signed statement of its size and root hash.

Body, each line ending in a newline::

    <origin>                    the log's unique name, e.g. "example.org/sif-lifecycle/log"
    <tree size>                 ASCII decimal, no leading zeros
    <base64 root hash>          standard base64 of the 32-byte RFC 6962 root
    [<extension line> ...]      optional, non-empty, opaque

wrapped in a signed note (:mod:`lifecycle.tlog.note`) whose key name is by convention the origin.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.errors import LogProofError
from lifecycle.tlog.merkle import HASH_SIZE
from lifecycle.tlog.note import NoteSigner, NoteVerifier, open_note, sign_note

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def parse_decimal(text: str, what: str) -> int:
    """A non-negative decimal with no sign, spaces or leading zeros (one spelling per number)."""
    if not _DECIMAL.fullmatch(text) or len(text) > 19:
        raise LogProofError(f"{what} {text!r} is not a canonical decimal number")
    return int(text)


def parse_hash(text: str, what: str) -> bytes:
    """A 32-byte hash in canonical standard base64."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise LogProofError(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode() != text:
        raise LogProofError(f"{what} is not a canonical base64 {HASH_SIZE}-byte hash")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body strictly (the note text, signatures already removed)."""
        if not body.endswith("\n"):
            raise LogProofError("the checkpoint does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise LogProofError("the checkpoint needs origin, tree size and root hash lines")
        origin, size, root, *extensions = lines
        if not origin:
            raise LogProofError("the checkpoint origin line is empty")
        if any(not ext for ext in extensions):
            raise LogProofError("the checkpoint has an empty extension line")
        return cls(
            origin,
            parse_decimal(size, "checkpoint tree size"),
            parse_hash(root, "checkpoint root hash"),
            tuple(extensions),
        )

    def sign(self, signer: NoteSigner) -> bytes:
        return sign_note(self.body(), [signer])


def open_checkpoint(
    message: bytes, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and return it; ``origin``, when given, must match exactly."""
    checkpoint = Checkpoint.parse(open_note(message, verifiers).text)
    if origin is not None and checkpoint.origin != origin:
        raise LogProofError(
            f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}",
            hint="check you pinned the right log's verifier key and origin",
        )
    return checkpoint
