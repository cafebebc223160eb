"""Which signatures by a compromised key are proven (RFC 3161) to predate its compromise.

The compromise time is the earliest invalidity date recorded when the key's certificates were
revoked; the proof is :mod:`lifecycle.timestamp.proof` with the CA root as the TSA root and the
CA's CRLs as the TSA chain's revocation evidence (the local TSA is issued by the same CA).
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.store.ca_service import INTERMEDIATE, ROOT
from lifecycle.strategies.context import ApplyContext
from lifecycle.timestamp.proof import TsaTrust, proven_times


def compromised_since(ctx: ApplyContext, fingerprint: str) -> datetime | None:
    """The earliest invalidity date of the key's revoked certificates (None: not known)."""
    key_id = ctx.ca.keys.get(fingerprint).id
    dates = []
    for row in ctx.ca.certificates():
        if row.key_id != key_id:
            continue
        revocation = ctx.ca.revocation(row)
        if revocation is not None and revocation.invalidity_date is not None:
            dates.append(revocation.invalidity_date)
    return min(dates, default=None)


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
