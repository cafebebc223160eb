"""The DSSE v1.1 ``extension`` that carries a signature's long-term evidence.

::

    {"kind": "https://sif-lifecycle.dev/ephemeral/v1",
     "ext": {"certificates": ["<leaf PEM>", "<issuing CA PEM>", ...],
             "evidence": <lifecycle.tlog Evidence JSON>}}

``ephemeral/v1`` is written by ephemeral signing (key made in memory, destroyed after signing);
``evidence/v1`` has the same fields and marks certificate-based signatures of the other
strategies that were logged too. The extension is not covered by the signature: every piece of
it is checked on its own (certificate chain, signed checkpoint and timestamp, inclusion proof)
and tied to the signature by the log entry, which names the signature bytes and payload digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from lifecycle.errors import LogProofError
from lifecycle.integrity.dsse import Extension
from lifecycle.pki.certs import certificate_pem, load_certificates
from lifecycle.tlog.evidence import Evidence

EPHEMERAL_KIND = "https://sif-lifecycle.dev/ephemeral/v1"
EVIDENCE_KIND = "https://sif-lifecycle.dev/evidence/v1"
KINDS = (EPHEMERAL_KIND, EVIDENCE_KIND)


@dataclass(frozen=True)
class SignatureEvidence:
    kind: str
    certificates: tuple[x509.Certificate, ...]
    """Leaf first, then the certificates that chain it towards a root (not the root itself)."""
    evidence: Evidence


def build_extension(kind: str, certificates: Sequence[x509.Certificate],
                    evidence: Evidence) -> Extension:
    return Extension(kind, {
        "certificates": [certificate_pem(c).decode() for c in certificates],
        "evidence": evidence.to_json(),
    })


def parse_extension(extension: Extension | None) -> SignatureEvidence | None:
    """The evidence of a signature, None if it carries none; malformed evidence raises."""
    if extension is None or extension.kind not in KINDS:
        return None
    ext: Mapping[str, Any] = extension.ext
    pems = ext.get("certificates")
    if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
        raise LogProofError("the signature's evidence has no certificate list")
    certificates = tuple(c for p in pems for c in load_certificates(
        p.encode(), path="signature extension"))
    return SignatureEvidence(extension.kind, certificates,
                             Evidence.from_json(ext.get("evidence") or {}))
