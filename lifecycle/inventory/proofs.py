"""Which signatures carry RFC 3161 tokens, and the signing time those tokens prove.

Recorded with the inventory (``image_signatures.tokens`` and ``proven_at``) so the report's
forecast reads proven times without opening images. The proof is
:func:`lifecycle.timestamp.proof.proven_times`, the machinery ``lifecycle.verify`` judges with,
against the CA's root and intermediate as TSA roots (the local TSA is issued by the same CA)
and the CA's newest stored CRLs as the TSA chain's revocation evidence. The newest CRL may
have been issued before a token's genTime (the service publishes CRLs on its schedule and the
inventory cannot sign a fresh one); as the store is the CA, its own revocation records then
decide: with no TSA or intermediate certificate revoked, the stale CRLs are left out and the
chain is judged ``soft-fail`` without them; with one revoked, the stale evidence stands and
the tokens prove nothing. Tokens that prove nothing (another TSA, a bad token) are counted
with no proven time. ``verify --tsa-roots`` judges again with the CRLs it is given, by
default hard-fail; the report's oracle test checks every claim that way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from lifecycle.errors import LifecycleError
from lifecycle.inventory.models import ImageRecord, ImageSignatureRecord
from lifecycle.model.roles import CaRole
from lifecycle.store.models import CertificateRecord, RevocationRecord
from lifecycle.store.queries import latest_certificate_pem, latest_crl, table
from lifecycle.timestamp.proof import TsaTrust, proven_times

_CA = (CaRole.ROOT, CaRole.INTERMEDIATE)
_STALE = "revocation data is stale"


class Proof(NamedTuple):
    tokens: int
    proven_at: datetime | None


class CaTsaTrust(NamedTuple):
    trust: TsaTrust
    chain_revoked: bool
    """The store records a revoked TSA or intermediate certificate."""


def ca_tsa_trust(conn: Connection) -> CaTsaTrust | None:
    """The CA as TSA root (None before it exists), with its newest CRLs."""
    pems = [latest_certificate_pem(conn, role) for role in _CA]
    if pems[0] is None:
        return None
    root, *inter = [x509.load_pem_x509_certificate(p.encode()) for p in pems if p is not None]
    crls = tuple(der for role in _CA if (der := latest_crl(conn, role)) is not None)
    c, r = table(CertificateRecord), table(RevocationRecord)
    revoked = conn.execute(select(r.c.id).join(c, c.c.id == r.c.certificate_id).where(
        c.c.role.in_((CaRole.TSA, CaRole.INTERMEDIATE))).limit(1)).first() is not None
    return CaTsaTrust(TsaTrust((root,), tuple(inter), crls, revocation="soft-fail"), revoked)


def signature_proofs(path: str | Path, ca: CaTsaTrust | None) -> dict[tuple[int, str], Proof]:
    """(signature object ID, DSSE keyid) -> its tokens and proven time, for every DSSE
    signature of ``path`` carrying tokens (an unreadable image: none)."""
    trust = ca.trust if ca is not None else TsaTrust(())
    try:
        proven = proven_times(path, trust)
        if ca is not None and not ca.chain_revoked and any(
                _STALE in e for p in proven for e in p.rejected):
            proven = proven_times(path, replace(trust, crls=()))
    except (LifecycleError, OSError):
        return {}
    return {(p.object_id, p.keyid): Proof(len(p.tokens), p.at) for p in proven}


def proven_signers(engine: Engine) -> dict[str, dict[str, datetime | None]]:
    """Image path -> DSSE keyid -> the latest proven signing time of that key's signatures in
    the image, for every keyid with a signature carrying tokens; None when one of its
    signatures is not proven (tokens that prove nothing, or no token on another signature)."""
    i, s = table(ImageRecord), table(ImageSignatureRecord)
    seen: dict[str, dict[str, list[datetime | None]]] = {}
    stamped: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        stamped_images = select(s.c.image_id).where(s.c.tokens > 0)  # only these are read
        rows = conn.execute(select(i.c.path, s.c.signer, s.c.tokens, s.c.proven_at)
                            .join(i, i.c.id == s.c.image_id)
                            .where(s.c.format == "dsse", s.c.image_id.in_(stamped_images)))
        for path, signer, tokens, at in rows:
            seen.setdefault(path, {}).setdefault(signer, []).append(at)
            if tokens:
                stamped.add((path, signer))
    out: dict[str, dict[str, datetime | None]] = {}
    for path, signers in seen.items():
        for signer, times in signers.items():
            if (path, signer) in stamped:
                out.setdefault(path, {})[signer] = None if None in times else max(
                    t for t in times if t is not None)
    return out
