"""Three simulated years: certificates live 90 days, the resign set's key rotates every year.

At every simulated day every tracked image verifies with the trust material published for its
set: our verifier with the published public keys, then each signer's published certificate is
validated at that day with the published chain and CRLs (``validate_signing_certificate``), and
by stock ``--ocsp-verify``'s rules (tests/interop/stockocsp, responses signed that day). A
certificate path with fixed material (leaf, chain, CRLs) is valid over one interval of time, the
intersection of their validity periods; so validating it on the first and the last day it was in
use proves every day in between, which keeps the run fast. securesystemslib (an independent DSSE
implementation; the reference Go verifier in tests/interop takes PGP keyrings only) checks every
envelope with each published key whenever an image or the published material changed. Every
action ran inside its window and only once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.config import ImageSetPolicy
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from tests.strategies.conftest import T0, Fleet, make_fleet
from tests.strategies.trust import check_certificate, check_image, check_stock_ocsp, peer_verify

Run = Callable[..., subprocess.CompletedProcess[str]]

DAYS = 3 * 365
COMMON = {"certificate_lifetime": timedelta(days=90), "crl_lifetime": timedelta(days=30)}
WEB = ImageSetPolicy("web", ("web-*.sif",), "resign", key_rotation=timedelta(days=365),
                     overlap=timedelta(days=30), **COMMON)  # type: ignore[arg-type]
BASE = ImageSetPolicy("base", ("base-*.sif",), "reissue", **COMMON)  # type: ignore[arg-type]


class DailyCheck:
    """Verifies every image each day; validates certificate paths at the ends of their spans."""

    def __init__(self, fleet: Fleet, images: dict[str, list[Path]], stock: Run) -> None:
        self.fleet = fleet
        self.stock = stock
        self.images = images
        self.verified: dict[Path, tuple[tuple[int, bytes], list[str]]] = {}
        self.spans: dict[tuple[str, str], tuple[bytes, Path, datetime, datetime]] = {}
        self.validations = 0
        self.peer_checks = 0

    def directory(self, name: str) -> Path:
        return self.fleet.root / "publish" / name

    def day(self, at: datetime) -> None:
        for name, paths in self.images.items():
            directory = self.directory(name)
            revision = (directory / "manifest.json").read_bytes()
            for path in paths:
                stamp = (path.stat().st_mtime_ns, revision)
                cached = self.verified.get(path)
                if cached is None or cached[0] != stamp:
                    signers = check_image(path, directory, at)
                    assert signers, f"{path.name}: no published key verifies it at {at}"
                    for fingerprint in signers:
                        peer_verify(path, directory / "keys" / f"{fingerprint}.pub")
                        self.peer_checks += 1
                    self.verified[path] = (stamp, signers)
                for fingerprint in self.verified[path][1]:
                    self.span(name, fingerprint, at)

    def snapshot(self, name: str, fingerprint: str) -> tuple[bytes, Path]:
        """The certificate path material in use now, copied aside (the directory moves on)."""
        directory = self.directory(name)
        files = [Path("certificates") / f"{fingerprint}.pem", Path("intermediate.pem"),
                 Path("root.pem"), Path("crl/root.crl"), Path("crl/intermediate.crl")]
        data = [(directory / f).read_bytes() for f in files]
        material = hashlib.sha256(b"".join(data)).digest()
        copy = self.fleet.root / "snapshots" / material.hex()[:16]
        if not copy.exists():
            for relative, content in zip(files, data, strict=True):
                (copy / relative).parent.mkdir(parents=True, exist_ok=True)
                (copy / relative).write_bytes(content)
        return material, copy

    def span(self, name: str, fingerprint: str, at: datetime) -> None:
        material, copy = self.snapshot(name, fingerprint)
        current = self.spans.get((name, fingerprint))
        if current is not None and current[0] == material:
            self.spans[(name, fingerprint)] = (material, copy, current[2], at)
            return
        if current is not None:
            self.close(name, fingerprint)
        self.validate(fingerprint, copy, at)
        self.spans[(name, fingerprint)] = (material, copy, at, at)

    def close(self, name: str, fingerprint: str) -> None:
        _, copy, first, last = self.spans.pop((name, fingerprint))
        if last != first:
            self.validate(fingerprint, copy, last)

    def validate(self, fingerprint: str, material: Path, at: datetime) -> None:
        check_certificate(fingerprint, material, at)
        check_stock_ocsp(self.stock, self.fleet.ca, fingerprint, material, at)
        self.validations += 1


@pytest.mark.slow
def test_three_years_of_operation(tmp_path: Path, stockocsp: Run) -> None:
    fleet = make_fleet(tmp_path, [WEB, BASE])
    fleet.run()  # provisions both sets' keys
    images = {"web": fleet.signed_images("web", 3), "base": fleet.signed_images("base", 2)}
    reissue_bytes = [p.read_bytes() for p in images["base"]]
    check = DailyCheck(fleet, images, stockocsp)
    midnight = T0
    end = T0 + timedelta(days=DAYS)
    while fleet.now < end:
        actions = fleet.plan()
        if any(a.ready(fleet.now) for a in actions):
            fleet.run()
            actions = fleet.plan()
        if fleet.now == midnight:
            check.day(fleet.now)
            midnight += timedelta(days=1)
        fleet.now = min([midnight, *(a.not_before for a in actions if a.not_before > fleet.now)])
    for name, fingerprint in list(check.spans):
        check.close(name, fingerprint)
    assert [p.read_bytes() for p in images["base"]] == reissue_bytes  # reissue never touches images
    done = [(at, action) for at, action, result in fleet.history if result.status == "done"]
    assert all(result.ok for _, _, result in fleet.history), [
        r for _, _, r in fleet.history if not r.ok]
    keys = Counter(action.key for _, action in done)
    assert [k for k, n in keys.items() if n > 1] == []  # never twice
    for at, action in done:  # inside the window
        assert action.not_before <= at <= action.due, (action.key, at)
    with session_scope(fleet.engine) as session:  # every action, whatever its outcome, audited
        audited = Counter(json.loads(r.detail)["key"] for r in audit.entries(session)
                          if r.action.startswith("action."))
    assert audited == Counter(action.key for _, action, _ in fleet.history)
    kinds = Counter(action.kind for _, action in done)
    assert kinds["rotate"] == 2  # 2028-01-01 and 2028-12-31; the third is due 2029-12-31
    assert kinds["resign"] == 3 * 2 and kinds["drop"] == 3 * 2 and kinds["retire"] == 2
    assert kinds["reissue"] >= 2 * 17  # every 60 days for each set's live key
    assert kinds["crl-refresh"] >= 2 * (DAYS // 15 - 1)
    assert check.peer_checks >= 20 and check.validations >= 100
