"""The transparency log: RFC 6962 Merkle tree, C2SP checkpoints, proofs and signed timestamps.

Pure: no SIF and no database here; storage backends implement :class:`LogStorage`
(:class:`MemoryLogStorage` here, SQL in :mod:`lifecycle.store.tlog`).
"""

from lifecycle.tlog.checkpoint import Checkpoint, open_checkpoint
from lifecycle.tlog.entry import Entry, Submission, digest_payload
from lifecycle.tlog.evidence import Evidence, VerifiedEntry
from lifecycle.tlog.log import LeafRecord, Log, LoggedEntry, LogStorage
from lifecycle.tlog.memory import MemoryLogStorage
from lifecycle.tlog.merkle import EMPTY_ROOT, leaf_hash, node_hash
from lifecycle.tlog.note import NoteSigner, NoteVerifier, open_note, sign_note
from lifecycle.tlog.proof import ConsistencyProof, InclusionProof
from lifecycle.tlog.timestamp import Timestamp, open_timestamp
from lifecycle.tlog.witness import check_consistency

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "ConsistencyProof",
    "Entry",
    "Evidence",
    "InclusionProof",
    "LeafRecord",
    "Log",
    "LogStorage",
    "LoggedEntry",
    "MemoryLogStorage",
    "NoteSigner",
    "NoteVerifier",
    "Submission",
    "Timestamp",
    "VerifiedEntry",
    "check_consistency",
    "digest_payload",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "open_timestamp",
    "sign_note",
]
