"""Certificate statuses are computed once; "expires soon" only when nothing planned renews in time."""

from __future__ import annotations

from datetime import timedelta

from lifecycle.model.cert_status import CertStatus, certificate_status
from lifecycle.model.fleet import FleetState, short
from lifecycle.model.key_state import KeyState
from lifecycle.reports.forecast import FleetIndex
from lifecycle.reports.gather import expiring_soon
from lifecycle.reports.model import CertRow, KeyRow
from lifecycle.strategies.plan import plan
from tests.reports.test_forecast import JAN1, POLICIES, cert, key


def test_status_precedence() -> None:
    end = JAN1 + timedelta(days=90)

    def status(**kw: object) -> CertStatus:
        args: dict[str, object] = {"not_after": end, "revoked": False, "superseded": False,
                                   "key_state": KeyState.ACTIVE, "now": JAN1} | kw
        return certificate_status(**args)  # type: ignore[arg-type]

    assert status() == CertStatus.CURRENT
    assert status(superseded=True) == CertStatus.SUPERSEDED
    assert status(key_state=KeyState.RETIRED) == CertStatus.RETIRED
    assert status(key_state=KeyState.RETIRING) == CertStatus.CURRENT  # still in its overlap
    # A past-dated certificate of a retired key is expired, never current.
    assert status(key_state=KeyState.RETIRED, now=end) == CertStatus.EXPIRED
    assert status(superseded=True, now=end + timedelta(days=1)) == CertStatus.EXPIRED
    assert status(revoked=True, now=end, key_state=KeyState.COMPROMISED) == CertStatus.REVOKED


def _row(info, status: CertStatus) -> CertRow:  # type: ignore[no-untyped-def]
    return CertRow(info.serial, info.key_fingerprint, "base", info.not_before, info.not_after,
                   None, None, "", info.superseded, status)


def test_expires_soon_only_without_a_timely_renewal() -> None:
    state = FleetState(keys=(key("aa", "base"),), certificates=(cert("01", "aa", JAN1),))
    now = JAN1 + timedelta(days=70)  # 20 days left, inside the renewal window
    rows = [_row(state.certificates[0], CertStatus.CURRENT)]
    keys = [KeyRow("aa", "base", KeyState.ACTIVE, JAN1, JAN1, None)]
    planned = FleetIndex.build(state.keys, state.certificates, plan(state, POLICIES, now))
    assert any(a.kind == "reissue" for a in plan(state, POLICIES, now))
    assert expiring_soon(rows, keys, planned, now) == ()
    unplanned = FleetIndex.build(state.keys, state.certificates, [])
    assert expiring_soon(rows, keys, unplanned, now) == tuple(rows)
    # Its key's signatures are dropped before it ends: no renewal is needed.
    dropped = [KeyRow("aa", "base", KeyState.RETIRING, JAN1, JAN1, now + timedelta(days=5))]
    assert expiring_soon(rows, dropped, unplanned, now) == ()
    # Expired or superseded certificates are never "expires soon".
    for status in (CertStatus.EXPIRED, CertStatus.SUPERSEDED, CertStatus.RETIRED):
        assert expiring_soon([_row(state.certificates[0], status)], keys, unplanned, now) == ()


def test_readable_identifiers() -> None:
    assert short("SHA256:x6l8Qe0pZ9yT1kWmFs") == "SHA256:x6l8…mFs"
    assert short("SHA256:abc") == "SHA256:abc"
    assert short("5f3c0a1b2c3d4e5f09a1") == "5F3C…09A1"
    assert short("01") == "01"
