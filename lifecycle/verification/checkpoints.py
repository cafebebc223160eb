"""A verifier's memory of the newest checkpoint it trusted, per log, and the fork check.

One file per log origin in a directory (``--checkpoint-store``): the signed checkpoint note as
the log published it, replaced atomically when a consistency proof showed that a newer one
extends it. A checkpoint that cannot be reconciled with the remembered one is a fork: the
verification fails and both notes are the evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import LogError
from lifecycle.pki.files import write_atomic
from lifecycle.tlog.checkpoint import Checkpoint, open_checkpoint
from lifecycle.tlog.client import LogClient
from lifecycle.tlog.note import NoteVerifier
from lifecycle.tlog.proof import ConsistencyProof
from lifecycle.tlog.witness import check_consistency


@dataclass(frozen=True)
class ConsistencyOutcome:
    remembered_size: int | None
    """Size of the checkpoint remembered before this one (None: none was)."""
    checked: bool
    """A consistency proof (or an identical checkpoint) connected the two."""
    advanced: bool
    """The store now remembers the new checkpoint."""


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, origin: str) -> Path:
        return self.directory / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".checkpoint")

    def remembered(self, origin: str, verifiers: Sequence[NoteVerifier]) -> Checkpoint | None:
        path = self.path(origin)
        try:
            note = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LogError(f"cannot read the remembered checkpoint: {exc.strerror}",
                           path=path) from None
        return open_checkpoint(note, verifiers, origin)

    def observe(self, note: bytes, checkpoint: Checkpoint, verifiers: Sequence[NoteVerifier],
                log: LogClient | None = None) -> ConsistencyOutcome:
        """Reconcile a verified checkpoint with the remembered one; raise LogForkError on a fork.

        Offline, a checkpoint of the same size must have the same root; of another size it is
        accepted but not remembered (no proof connects them). With ``log`` a consistency proof
        between the two sizes is fetched and checked, and the larger checkpoint remembered.
        """
        old = self.remembered(checkpoint.origin, verifiers)
        if old is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path(checkpoint.origin), note)
            return ConsistencyOutcome(None, False, True)
        if old.size == checkpoint.size:
            check_consistency(old, checkpoint, ConsistencyProof(old.size, old.size, ()))
            return ConsistencyOutcome(old.size, True, False)
        if log is None:
            return ConsistencyOutcome(old.size, False, False)
        small, large = sorted((old, checkpoint), key=lambda c: c.size)
        check_consistency(small, large, log.consistency_proof(small.size, large.size))
        if checkpoint.size > old.size:
            write_atomic(self.path(checkpoint.origin), note)
            return ConsistencyOutcome(old.size, True, True)
        return ConsistencyOutcome(old.size, True, False)
