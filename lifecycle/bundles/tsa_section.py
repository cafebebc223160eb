"""The ``tsa/`` section of a bundle: what an air-gapped site needs to check proven times.

Exported: the CA root as the TSA root, and every TSA certificate generation with the
intermediate that issued it (the CRLs under ``crls/`` are the TSA chain's revocation evidence).
Read: the proven signing time of each DSSE signature of an image, by keyid, offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from lifecycle.bundles import layout
from lifecycle.bundles.verify import OpenedBundle
from lifecycle.pki.certs import load_certificates
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, TSA, CaService
from lifecycle.timestamp.proof import TsaTrust, proven_times


def tsa_files(ca: CaService) -> list[tuple[str, str, bytes]]:
    """(path, kind, data) of the section; empty when the CA never issued a TSA certificate."""
    rows = ca.certificates()
    tsa = [r for r in rows if r.role == TSA]
    if not tsa:
        return []
    roots = [r for r in rows if r.role == ROOT]
    chain = [*tsa, *(r for r in rows if r.role == INTERMEDIATE)]
    return [(layout.TSA_ROOTS, "certificate", "".join(r.pem for r in roots).encode()),
            (layout.TSA_CHAIN, "certificate", "".join(r.pem for r in chain).encode())]


def proven_by_keyid(bundle: OpenedBundle, image: Path) -> Mapping[str, datetime]:
    """The latest proven signing time per signer keyid, for keys whose every timestamped
    signature in ``image`` proved one (none without a ``tsa/`` section)."""
    files = bundle.files
    if layout.TSA_ROOTS not in files:
        return {}
    trust = TsaTrust(tuple(load_certificates(files[layout.TSA_ROOTS], path=layout.TSA_ROOTS)),
                     tuple(load_certificates(files[layout.TSA_CHAIN], path=layout.TSA_CHAIN)),
                     tuple(data for _, data in bundle.of_kind("crl")))
    out: dict[str, datetime] = {}
    failed: set[str] = set()
    for proven in proven_times(image, trust):
        if proven.at is None:
            failed.add(proven.keyid)
        else:
            out[proven.keyid] = max(out.get(proven.keyid, proven.at), proven.at)
    return {k: v for k, v in out.items() if k not in failed}
