"""What a verifier that remembered a checkpoint does with a newer one: prove the log only grew.

Both checkpoints must already be opened (signature verified) by the caller. Two signed checkpoints
of the same log that no consistency proof connects are evidence of a fork: keep both.
"""

from __future__ import annotations

import base64

from lifecycle.errors import LogForkError, LogProofError
from lifecycle.tlog.checkpoint import Checkpoint
from lifecycle.tlog.proof import ConsistencyProof


def _describe(cp: Checkpoint) -> str:
    return f"size {cp.size} root {base64.b64encode(cp.root_hash).decode()}"


def check_consistency(old: Checkpoint, new: Checkpoint, proof: ConsistencyProof) -> None:
    """Return if ``new`` extends ``old``; raise :class:`LogForkError` if the log rewrote history."""
    if old.origin != new.origin:
        raise LogProofError(f"checkpoints of different logs: {old.origin!r} and {new.origin!r}")
    hint = "keep both signed checkpoints as evidence and stop trusting this log"
    if new.size < old.size:
        raise LogForkError(
            f"the log of {old.origin!r} shrank from {_describe(old)} to {_describe(new)}",
            hint=hint,
        )
    if new.size == old.size and new.root_hash != old.root_hash:
        raise LogForkError(
            f"the log of {old.origin!r} signed two roots for size {old.size}: "
            f"{_describe(old)} and {_describe(new)}",
            hint=hint,
        )
    if (proof.old_size, proof.new_size) != (old.size, new.size):
        raise LogProofError(
            f"the consistency proof is for sizes {proof.old_size}->{proof.new_size}, "
            f"not {old.size}->{new.size}"
        )
    try:
        proof.verify(old.root_hash, new.root_hash)
    except LogProofError as exc:
        raise LogForkError(
            f"the log of {old.origin!r} at {_describe(new)} does not extend the remembered "
            f"{_describe(old)}: {exc.message}",
            hint=hint,
        ) from None
