"""A local TSA from a store CA, served over loopback HTTP (random port)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509

from lifecycle.clock import utc_now
from lifecycle.service.http import RunningServer, start_http
from lifecycle.store.ca_service import INTERMEDIATE, ROOT
from lifecycle.store.tsa_service import local_tsa
from lifecycle.timestamp.authority import TimestampAuthority
from lifecycle.timestamp.proof import TsaTrust
from tests.pki.conftest import StoreCa, memory_ca, store_ca

__all__ = ["LocalTsa", "memory_ca", "store_ca"]


@dataclass
class LocalTsa:
    store: StoreCa
    authority: TimestampAuthority
    server: RunningServer

    @property
    def url(self) -> str:
        return f"{self.server.url}/tsa"

    @property
    def root(self) -> x509.Certificate:
        return self.store.ca.certificate(ROOT)

    @property
    def intermediate(self) -> x509.Certificate:
        return self.store.ca.certificate(INTERMEDIATE)

    def crls(self) -> tuple[bytes, ...]:
        """The CA's current CRLs (root's, intermediate's): the TSA chain's revocation evidence."""
        return tuple(self.store.ca.publish_crl(role) for role in (ROOT, INTERMEDIATE))

    def trust(self, required: int = 1) -> TsaTrust:
        return TsaTrust((self.root,), crls=self.crls(), required=required)


@pytest.fixture
def local(store_ca: StoreCa) -> Iterator[LocalTsa]:
    authority = local_tsa(store_ca.ca, utc_now)
    server = start_http(None, tsa=authority.respond)
    try:
        yield LocalTsa(store_ca, authority, server)
    finally:
        server.stop()
