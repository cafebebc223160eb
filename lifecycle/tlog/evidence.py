"""Log evidence that travels with a signature: the entry, its inclusion proof, a checkpoint and the
signed timestamp, checked together offline against a pinned log key.

JSON form (what a DSSE v1.1 signature ``extension`` or a bundle carries)::

    {"type": "sif-lifecycle/tlog-evidence", "version": 1,
     "leaf": "<base64 canonical entry bytes>",
     "inclusion_proof": {"type": "inclusion", "index": ..., "tree_size": ..., "hashes": [...]},
     "checkpoint": "<signed checkpoint note>",
     "timestamp": "<signed timestamp note>"}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import LogError, LogProofError
from lifecycle.tlog.checkpoint import Checkpoint, open_checkpoint
from lifecycle.tlog.entry import Entry
from lifecycle.tlog.merkle import leaf_hash
from lifecycle.tlog.note import NoteVerifier
from lifecycle.tlog.proof import InclusionProof
from lifecycle.tlog.timestamp import open_timestamp

EVIDENCE_TYPE = "sif-lifecycle/tlog-evidence"


@dataclass(frozen=True)
class VerifiedEntry:
    """What verified evidence establishes: this entry, at this index, logged at its time."""

    index: int
    entry: Entry
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Evidence:
    leaf: bytes
    inclusion_proof: InclusionProof
    checkpoint: bytes
    timestamp: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "type": EVIDENCE_TYPE,
            "version": 1,
            "leaf": base64.b64encode(self.leaf).decode(),
            "inclusion_proof": self.inclusion_proof.to_json(),
            "checkpoint": self.checkpoint.decode(),
            "timestamp": self.timestamp.decode(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        if not isinstance(data, Mapping) or data.get("type") != EVIDENCE_TYPE:
            raise LogProofError(f"not {EVIDENCE_TYPE} evidence")
        if data.get("version") != 1:
            raise LogProofError(
                f"unsupported evidence version {data.get('version')!r}",
                hint="upgrade sif-lifecycle",
            )
        try:
            return cls(
                base64.b64decode(data["leaf"], validate=True),
                InclusionProof.from_json(data["inclusion_proof"]),
                str(data["checkpoint"]).encode(),
                str(data["timestamp"]).encode(),
            )
        except (KeyError, TypeError, binascii.Error):
            raise LogProofError("the log evidence is missing or has a malformed field") from None

    def verify(self, verifiers: Sequence[NoteVerifier], origin: str | None = None) -> VerifiedEntry:
        """Check every piece against pinned log keys; raise :class:`LogProofError` if one fails.

        The checkpoint and timestamp must be signed by a pinned key and agree on the origin; the
        proof must put the leaf under the checkpoint's root; the timestamp must name this leaf,
        index and integrated time.
        """
        checkpoint = open_checkpoint(self.checkpoint, verifiers, origin)
        try:
            entry = Entry.decode(self.leaf)
        except LogError as exc:
            raise LogProofError(f"log evidence: {exc.message}") from None
        proof = self.inclusion_proof
        if proof.tree_size != checkpoint.size:
            raise LogProofError(
                f"the inclusion proof is for tree size {proof.tree_size}, "
                f"the checkpoint for {checkpoint.size}"
            )
        hashed = leaf_hash(self.leaf)
        proof.verify(hashed, checkpoint.root_hash)
        ts = open_timestamp(self.timestamp, verifiers)
        if (ts.origin, ts.index, ts.leaf_hash) != (checkpoint.origin, proof.index, hashed):
            raise LogProofError("the signed timestamp is for another log entry")
        if ts.integrated_time != entry.integrated_time:
            raise LogProofError("the signed timestamp and the entry disagree on the time")
        return VerifiedEntry(proof.index, entry, checkpoint)
