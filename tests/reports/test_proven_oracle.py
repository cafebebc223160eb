"""The forecast column "sif-lifecycle, by proven time": every claim checked by real
verification (tests/reports/oracle.py ``check_proven``), for a resign set with [timestamp]
whose key is compromised on a known day and whose certificates then lapse.

The inventory records which signatures carry tokens and the proven genTime, verified against
the CA's TSA roots (lifecycle/inventory/proofs.py); the report reads it without opening images.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from lifecycle.config import Config
from lifecycle.inventory.models import ImageSignatureRecord
from lifecycle.model.key_state import KeyState
from lifecycle.reports import build_report, render
from lifecycle.timestamp.restamp import restamp
from tests.reports.oracle import Oracle, check_proven, check_report
from tests.strategies.conftest import T0, make_fleet
from tests.strategies.test_resign import WEB
from tests.strategies.test_timestamps import _stamper

DAY = timedelta(days=1)


def test_every_proven_time_claim_holds(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [WEB])
    fleet.stamper_at = _stamper(fleet)
    fleet.run()
    bad = fleet.active_key("web")
    early, late, bare = fleet.image("web-early"), fleet.image("web-late"), fleet.image("web-bare")
    fleet.now = T0 + 10 * DAY
    fleet.sign(early, bad)
    restamp(early, fleet.stamper_at(fleet.now))
    fleet.now = T0 + 20 * DAY
    for path in (late, bare):
        fleet.sign(path, bad)
    restamp(late, fleet.stamper_at(fleet.now))
    fleet.track(early, late, bare)
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)

    # the inventory: tokens and the verified genTime per signature; none on the bare image
    s = ImageSignatureRecord.__table__  # type: ignore[attr-defined]
    with fleet.engine.connect() as conn:
        rows = {r.signer + str(r.image_id): (r.tokens, r.proven_at)
                for r in conn.execute(select(s.c.signer, s.c.image_id, s.c.tokens,
                                             s.c.proven_at))}
    assert sorted(t for t, _ in rows.values()) == [0, 1, 1]
    assert sorted(a for t, a in rows.values() if t) == [T0 + 10 * DAY, T0 + 20 * DAY]

    oracle = Oracle()
    fleet.run()  # the service's next run republishes the CRLs the claims are checked with
    data = build_report(fleet.engine, config, fleet.now)
    by_path = {f.path: f for f in data.forecasts}
    assert by_path[str(bare)].proven is None  # no token: no claim
    for path in (early, late):
        proven = by_path[str(path)].proven
        assert proven is not None and proven.text == "indefinitely"
        assert "stock tools stop" in proven.basis
    check_proven(oracle, data, fleet.policies, fleet.engine)

    fleet.now = T0 + 25 * DAY  # the key leaked on day 15, found on day 25
    fleet.ca.keys.transition(bad, KeyState.COMPROMISED, "key file leaked", at=T0 + 15 * DAY)
    fleet.run()
    for days in (25, 400):  # after the compromise; after its certificates lapsed
        fleet.now = T0 + days * DAY
        fleet.run()
        data = build_report(fleet.engine, config, fleet.now)
        check_report(oracle, data, fleet.policies, fleet.engine, None)
        check_proven(oracle, data, fleet.policies, fleet.engine)
        kept = next(f for f in data.forecasts if f.path == str(early))
        assert kept.proven is not None and kept.proven.verifies
        assert "kept, not re-signed: proven before the key's compromise" in kept.proven.basis
        assert not kept.certificate.verifies  # stock tools: revoked
        assert b"by proven time" in render(data, "md") and b"kept, not re-signed" in render(data, "html")
    resigned = next(f for f in data.forecasts if f.path == str(late))
    assert resigned.proven is not None and "compromise" not in resigned.proven.basis
    assert oracle.violations == []
    assert oracle.checked["proven-indefinitely"] >= 9, oracle.checked


def test_tokens_from_an_untrusted_tsa_prove_nothing(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "site", [WEB])
    stranger = make_fleet(tmp_path / "stranger", [WEB])  # another CA: its TSA is not trusted
    fleet.run()
    signed = fleet.image("web-stamped")
    fleet.now = T0 + 10 * DAY
    fleet.sign(signed, fleet.active_key("web"))
    assert restamp(signed, _stamper(stranger)(fleet.now)) == 1
    fleet.track(signed)
    fleet.run()
    s = ImageSignatureRecord.__table__  # type: ignore[attr-defined]
    with fleet.engine.connect() as conn:
        [(tokens, proven_at)] = conn.execute(select(s.c.tokens, s.c.proven_at)).all()
    assert (tokens, proven_at) == (1, None)  # counted, verified, and found to prove nothing
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    data = build_report(fleet.engine, config, fleet.now)
    [f] = data.forecasts
    assert f.proven is not None and f.proven.basis.startswith("the timestamps on key")
    assert f.proven.until == f.certificate.until is not None  # judged as untimestamped
    oracle = Oracle()
    check_proven(oracle, data, fleet.policies, fleet.engine)
    assert oracle.violations == [] and oracle.checked["proven-until"] == 2
