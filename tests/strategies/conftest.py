"""A fleet on a real SQLite store with a CA, driven by a simulated clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.integrity.keys import PgpSigningKey
from lifecycle.integrity.sign import DsseSigner, PgpSigner, SignOptions, sign_image
from lifecycle.inventory.fleet import load_state
from lifecycle.inventory.scan import IMAGES, scan
from lifecycle.model.fleet import Action, FleetState
from lifecycle.pki import keys
from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.apply import ApplyContext, ApplyResult
from lifecycle.strategies.due import run_due
from lifecycle.strategies.plan import plan
from tests.pki.conftest import PASSPHRASE, URLS

T0 = datetime(2027, 1, 1, tzinfo=UTC)
_counter = itertools.count()


@dataclass
class Fleet:
    root: Path
    url: str
    ca: CaService
    policies: Policies
    now: datetime = T0
    history: list[tuple[datetime, Action, ApplyResult]] = field(default_factory=list)
    stamper_at: Callable[[datetime], Callable[[bytes], Sequence[bytes]]] | None = None
    """``[timestamp]``: tokens for the signatures the strategies make (None: off)."""

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.ca.engine

    def context(self) -> ApplyContext:
        return ApplyContext(self.engine, self.policies, self.ca, stamper_at=self.stamper_at)

    def state(self) -> FleetState:
        return load_state(self.engine, self.now, self.policies.publish_directories(),
                          self.ca.keys.files.root)

    def plan(self) -> list[Action]:
        return plan(self.state(), self.policies, self.now)

    def run(self) -> list[ApplyResult]:
        """Apply everything due now, remembering which action ran when."""
        return run_due(self.context(), self.now,
                       lambda action, result: self.history.append((self.now, action, result)))

    def image(self, name: str, payload: bytes = b"") -> Path:
        """A tiny two-object SIF image in the set's directory."""
        path = self.root / "images" / f"{name}.sif"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = payload or f"{name}-{next(_counter)}".encode()
        return create_image(path, [partition_spec(b"hsqs" + data), json_spec({"name": name})])

    def sign(self, path: Path, fingerprint: str) -> None:
        row = self.ca.keys.get(fingerprint)
        if row.kind == "pgp":  # as `singularity sign` would, at the simulated time
            signer = PgpSigner(PgpSigningKey(self.ca.keys.pgp_key(row), PASSPHRASE, "store"))
            sign_image(str(path), signer, SignOptions(signing_time=self.now))
            return
        private = self.ca.keys.private_key(row, PASSPHRASE)
        sign_image(str(path), DsseSigner((private,)), SignOptions())  # type: ignore[arg-type]

    def signed_images(self, image_set: str, count: int) -> list[Path]:
        """``count`` tracked images in ``image_set``, signed by its active key (run() first)."""
        paths = [self.image(f"{image_set}-{i}") for i in range(count)]
        for path in paths:
            self.sign(path, self.active_key(image_set))
        self.track(*paths)
        return paths

    def track(self, *paths: Path) -> None:
        scan(self.engine, [str(p) for p in paths], self.now, full=True, strict=True)

    def status(self, path: Path) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(select(IMAGES.c.status).where(
                IMAGES.c.path == str(path))).scalar_one())

    def active_key(self, image_set: str) -> str:
        return next(k.fingerprint for k in self.state().keys
                    if k.image_set == image_set and k.state == "active")


def make_fleet(tmp_path: Path, sets: Sequence[ImageSetPolicy], url: str = "") -> Fleet:
    url = url or sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    fleet_box: list[Fleet] = []
    service = KeyService(make_engine(url), tmp_path / "keys", clock=lambda: fleet_box[0].now)
    authority = CaService(service, PASSPHRASE, CaSettings(urls=URLS))
    images = str(tmp_path / "images")
    policies = Policies(tuple(replace(s, paths=tuple(f"{images}/{p}" for p in s.paths),
                                      publish_directory=tmp_path / "publish" / s.name)
                              for s in sets))
    fleet = Fleet(tmp_path, url, authority, policies)
    fleet_box.append(fleet)
    authority.init(root_algorithm=keys.KeyAlgorithm.P256,
                   intermediate_algorithm=keys.KeyAlgorithm.P256,
                   root_lifetime=timedelta(days=3650 * 2),
                   intermediate_lifetime=timedelta(days=3650))
    return fleet


@pytest.fixture
def fleet_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    return lambda *sets: make_fleet(tmp_path, sets)
