"""Evidence bundles: an entry verifies offline years later, and any altered piece is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from lifecycle.errors import LogProofError
from lifecycle.tlog import Evidence, Log, MemoryLogStorage, NoteSigner

from .conftest import ORIGIN, Clock, submission


@pytest.fixture
def log(signer: NoteSigner, clock: Clock) -> Log:
    log = Log(MemoryLogStorage(), ORIGIN, signer, clock)
    log.append_many([submission(i) for i in range(5)])
    clock.advance(3600)
    log.append(submission(5))
    clock.advance(60)
    log.append_many([submission(i) for i in range(6, 11)])
    return log


def test_evidence_round_trips_and_verifies(log: Log, signer: NoteSigner) -> None:
    evidence = Evidence.from_json(json.loads(json.dumps(log.evidence(5).to_json())))
    verified = evidence.verify([signer.verifier], origin=ORIGIN)
    assert verified.index == 5
    assert verified.entry.submission == submission(5)
    assert verified.entry.integrated_time == datetime(2026, 1, 2, 4, 4, 5, tzinfo=UTC)
    assert (verified.checkpoint.size, verified.checkpoint.root_hash) == (11, log.root())
    assert log.evidence(5, 6).verify([signer.verifier]).checkpoint.size == 6


def _tampered(log: Log) -> dict[str, Evidence]:
    good = log.evidence(5)
    other = log.evidence(6)
    data = good.to_json()
    entry = json.loads(base64.b64decode(data["leaf"]))
    entry["image_id"] = "another-image"
    leaf = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    proof = data["inclusion_proof"]
    impostor = NoteSigner.generate(ORIGIN)
    return {
        "entry": Evidence(leaf, good.inclusion_proof, good.checkpoint, good.timestamp),
        "proof": Evidence.from_json(
            {**data, "inclusion_proof": {**proof, "hashes": list(reversed(proof["hashes"]))}}
        ),
        "proof size": Evidence(
            good.leaf, log.inclusion_proof(5, 7), good.checkpoint, good.timestamp
        ),
        "checkpoint signature": Evidence(
            good.leaf, good.inclusion_proof, log.checkpoint().sign(impostor), good.timestamp
        ),
        "checkpoint text": Evidence(
            good.leaf, good.inclusion_proof, good.checkpoint.replace(b"\n11\n", b"\n12\n"),
            good.timestamp,
        ),
        "timestamp of another entry": Evidence(
            good.leaf, good.inclusion_proof, good.checkpoint, other.timestamp
        ),
        "timestamp time": Evidence(
            good.leaf, good.inclusion_proof, good.checkpoint,
            good.timestamp.replace(b"T04:04:05Z", b"T03:04:05Z"),
        ),
        "timestamp signature": Evidence(
            good.leaf, good.inclusion_proof, good.checkpoint, log.timestamp(5).sign(impostor)
        ),
    }  # fmt: skip


def test_any_altered_piece_is_refused(log: Log, signer: NoteSigner) -> None:
    for what, evidence in _tampered(log).items():
        with pytest.raises(LogProofError):
            evidence.verify([signer.verifier], origin=ORIGIN)
            pytest.fail(f"altered {what} was accepted")


def test_wrong_origin_or_key_is_refused(log: Log, signer: NoteSigner) -> None:
    evidence = log.evidence(1)
    with pytest.raises(LogProofError, match="not 'elsewhere'"):
        evidence.verify([signer.verifier], origin="elsewhere")
    with pytest.raises(LogProofError, match="trusted log key"):
        evidence.verify([NoteSigner.generate(ORIGIN).verifier])
    with pytest.raises(LogProofError):
        Evidence.from_json({**evidence.to_json(), "version": 2})
