"""Signed timestamps: the log key's statement of when an entry was integrated.

A checkpoint proves *that* an entry is in the log; the signed timestamp proves *when*, on its own,
so a verifier years later can check a certificate against the logged time without trusting the
signer's clock. It is a signed note (same key as checkpoints) with this body::

    sif-lifecycle/tlog-timestamp/v1
    origin <origin>
    index <entry index, decimal>
    leaf-hash <base64 RFC 6962 leaf hash of the entry>
    integrated-time <YYYY-MM-DDTHH:MM:SSZ>

Ed25519 is deterministic, so the log can re-issue the identical timestamp for any entry at any time.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lifecycle.errors import LogError, LogProofError
from lifecycle.tlog.checkpoint import parse_decimal, parse_hash
from lifecycle.tlog.entry import format_time, parse_time, utc_seconds
from lifecycle.tlog.note import NoteSigner, NoteVerifier, open_note, sign_note

HEADER = "sif-lifecycle/tlog-timestamp/v1"
_KEYS = ("origin", "index", "leaf-hash", "integrated-time")


@dataclass(frozen=True)
class Timestamp:
    origin: str
    index: int
    leaf_hash: bytes
    integrated_time: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "integrated_time", utc_seconds(self.integrated_time))

    def body(self) -> str:
        values = (
            self.origin,
            str(self.index),
            base64.b64encode(self.leaf_hash).decode(),
            format_time(self.integrated_time),
        )
        lines = [HEADER] + [f"{k} {v}" for k, v in zip(_KEYS, values, strict=True)]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Timestamp:
        lines = body.split("\n")
        if lines[0] != HEADER or len(lines) != len(_KEYS) + 2 or lines[-1] != "":
            raise LogProofError(f"the note is not a {HEADER} timestamp")
        values: list[str] = []
        for key, line in zip(_KEYS, lines[1:-1], strict=True):
            name, sep, value = line.partition(" ")
            if name != key or not sep or not value:
                raise LogProofError(f"timestamp line {line!r} should be '{key} <value>'")
            values.append(value)
        try:
            when = parse_time(values[3])
        except LogError as exc:
            raise LogProofError(f"timestamp: {exc.message}") from None
        return cls(
            values[0],
            parse_decimal(values[1], "timestamp index"),
            parse_hash(values[2], "timestamp leaf hash"),
            when,
        )

    def sign(self, signer: NoteSigner) -> bytes:
        return sign_note(self.body(), [signer])


def open_timestamp(message: bytes, verifiers: Sequence[NoteVerifier]) -> Timestamp:
    """Verify a signed timestamp's signature and parse it (compare its fields with the entry)."""
    return Timestamp.parse(open_note(message, verifiers).text)
