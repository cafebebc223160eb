"""The "by proven time" column of forecast(): hand-built fleets, hand-computed answers.
Every claim is also checked by real verification in tests/reports/test_proven_oracle.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifecycle.model.fleet import FleetState
from lifecycle.reports.forecast import FleetIndex, forecast
from lifecycle.strategies.plan import plan
from tests.reports.test_forecast import JAN1, POLICIES, cert, image, key

SIGNED = datetime(2027, 2, 1, tzinfo=UTC)
LATER = datetime(2027, 6, 1, tzinfo=UTC)  # the 90-day certificate ended 2027-04-01


def _run(state: FleetState, proven: dict[str, datetime | None], now: datetime = LATER,
         invalid_since: dict[str, datetime] | None = None):  # type: ignore[no-untyped-def]
    target = state.images[0]
    index = FleetIndex.build(state.keys, state.certificates, plan(state, POLICIES, now),
                             invalid_since=invalid_since)
    return forecast(target, POLICIES.set_for(target.path), index, now, proven=proven)


def test_no_tokens_no_claim() -> None:
    state = FleetState(keys=(key("aa", "base"),), certificates=(cert("01", "aa", JAN1),),
                       images=(image("/img/base/a.sif", "aa"),))
    assert _run(state, {}).proven is None


def test_proven_while_valid_verifies_after_stock_tools_stop() -> None:
    state = FleetState(keys=(key("aa", "base"),), certificates=(cert("01", "aa", JAN1),),
                       images=(image("/img/base/a.sif", "aa"),))
    f = _run(state, {"SHA256:aa": SIGNED}, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert f.proven is not None and f.proven.text == "indefinitely" and f.proven_by == "01"
    assert "proven (RFC 3161) at 2027-02-01 00:00 UTC" in f.proven.basis
    assert "stock tools stop 2027-04-01" in f.proven.basis
    after = _run(state, {"SHA256:aa": SIGNED})
    assert not after.certificate.verifies and after.proven is not None
    assert after.proven.verifies and "stock tools already stop" in after.proven.basis


def test_compromise_after_the_proven_time_keeps_it() -> None:
    state = FleetState(keys=(key("aa", "web", "compromised"),),
                       certificates=(cert("01", "aa", JAN1, revoked=True),),
                       images=(image("/img/web/a.sif", "aa"),))
    leaked = SIGNED + timedelta(days=3)
    f = _run(state, {"SHA256:aa": SIGNED}, invalid_since={"01": leaked})
    assert f.proven is not None and f.proven.verifies
    assert "kept, not re-signed: proven before the key's compromise at 2027-02-04" in \
        f.proven.basis
    before = _run(state, {"SHA256:aa": SIGNED}, invalid_since={"01": SIGNED - timedelta(hours=1)})
    assert before.proven is not None and not before.proven.verifies
    assert "revoked as of 2027-01-31 23:00 UTC" in before.proven.basis


def test_outside_the_certificate_or_unproven() -> None:
    state = FleetState(keys=(key("aa", "base"),), certificates=(cert("01", "aa", JAN1),),
                       images=(image("/img/base/a.sif", "aa"),))
    f = _run(state, {"SHA256:aa": datetime(2026, 12, 1, tzinfo=UTC)})
    assert f.proven is not None and not f.proven.verifies
    assert "no certificate of it was valid then" in f.proven.basis
    unproven = _run(state, {"SHA256:aa": None}, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert unproven.proven is not None and unproven.proven.until == unproven.certificate.until
    assert unproven.proven.basis.startswith("the timestamps on key")
