"""``python -m tests.strategies.crash_worker ROOT NOW``: apply everything due on a fleet built by
``make_fleet(ROOT, SETS)``, as ``sif-lifecycle apply`` does, so a test can SIGKILL it midway."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.apply import ApplyContext
from lifecycle.strategies.due import run_due
from tests.pki.conftest import PASSPHRASE, URLS

COMMON = {"certificate_lifetime": timedelta(days=90), "crl_lifetime": timedelta(days=30)}
SETS = (ImageSetPolicy("web", ("web-*.sif",), "resign", key_rotation=timedelta(days=365),
                       overlap=timedelta(days=30), **COMMON),  # type: ignore[arg-type]
        ImageSetPolicy("base", ("base-*.sif",), "reissue", **COMMON))  # type: ignore[arg-type]


def context(root: Path, now: datetime) -> ApplyContext:
    """What ``make_fleet(root, SETS)`` builds, reopened on the store it left."""
    url = sqlite_url(root / "lifecycle.db")
    authority = CaService(KeyService(make_engine(url), root / "keys", clock=lambda: now),
                          PASSPHRASE, CaSettings(urls=URLS))
    images = str(root / "images")
    policies = Policies(tuple(replace(s, paths=tuple(f"{images}/{p}" for p in s.paths),
                                      publish_directory=root / "publish" / s.name)
                              for s in SETS))
    return ApplyContext(authority.engine, policies, authority)


if __name__ == "__main__":
    at = datetime.fromisoformat(sys.argv[2])
    for result in run_due(context(Path(sys.argv[1]), at), at):
        print(result.status, result.kind, result.subject, result.detail, flush=True)
