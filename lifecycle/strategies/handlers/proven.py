"""Which signatures by a compromised key are proven (RFC 3161) to predate its compromise.

The compromise time is the one recorded with the key's move to ``compromised``; the proof is
:mod:`lifecycle.timestamp.proof` with the CA root as the TSA root and the CA's CRLs as the TSA
chain's revocation evidence (the local TSA is issued by the same CA).
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.model.key_state import KeyState
from lifecycle.store.ca_service import INTERMEDIATE, ROOT
from lifecycle.strategies.context import ApplyContext
from lifecycle.timestamp.proof import TsaTrust, proven_times


def compromised_since(ctx: ApplyContext, fingerprint: str, now: datetime) -> datetime | None:
    """When the key was compromised, as recorded by ``key transition KEY compromised --at T``
    (what the revocation writes as the CRL entry's invalidityDate); None when not known to be
    before ``now``."""
    key = ctx.ca.keys.get(fingerprint)
    marks = [t.at for t in ctx.ca.keys.history(key.id or 0) if t.to_state == KeyState.COMPROMISED]
    return marks[-1] if marks and marks[-1] <= now else None


def proven_before(ctx: ApplyContext, path: str, keyid: str, since: datetime,
                  now: datetime) -> datetime | None:
    """The latest proven signing time of ``keyid``'s signatures in ``path`` if every one of them
    is proven earlier than ``since``; None otherwise (the image must be re-signed)."""
    trust = TsaTrust((ctx.ca.certificate(ROOT),), (ctx.ca.certificate(INTERMEDIATE),),
                     tuple(ctx.ca.publish_crl(role, now=now) for role in (ROOT, INTERMEDIATE)))
    mine = [p for p in proven_times(path, trust) if p.keyid == keyid]
    times = [p.at for p in mine if p.at is not None]
    if not mine or len(times) != len(mine) or max(times) >= since:
        return None
    return max(times)
