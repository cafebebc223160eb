"""A fixture fleet with every strategy and every key type: each forecast claim of its report,
at several simulated dates over a year and a half, checked against real verification
(tests/reports/oracle.py). The demo's run (P-256 throughout) is checked the same way in
tests/demo/test_forecast_oracle.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import Config, ImageSetPolicy, KeyAlgorithm
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.pki.keys import generate_private_key
from lifecycle.reports import build_report
from lifecycle.service.transparency import create_log, local_client
from lifecycle.strategies.apply import ApplyContext
from lifecycle.strategies.due import run_due
from lifecycle.strategies.plan import plan
from lifecycle.tlog.client import LocalLogClient
from tests.pki.conftest import PASSPHRASE
from tests.reports.conftest import tamper
from tests.reports.oracle import Oracle, check_report
from tests.strategies.conftest import T0, make_fleet

IDENTITY = "ci@example.org"
CRL = timedelta(days=30)
SETS = [
    ImageSetPolicy("base", ("base-*.sif",), "reissue", key_algorithm=KeyAlgorithm.RSA3072,
                   crl_lifetime=CRL),
    ImageSetPolicy("hpc", ("hpc-*.sif",), "reissue", key_algorithm=KeyAlgorithm.P384,
                   certificate_lifetime=timedelta(days=45), crl_lifetime=CRL),
    ImageSetPolicy("web", ("web-*.sif",), "resign", key_algorithm=KeyAlgorithm.ED25519,
                   key_rotation=timedelta(days=120), overlap=timedelta(days=20),
                   crl_lifetime=CRL),
    ImageSetPolicy("apps", ("apps-*.sif",), "resign", key_algorithm=KeyAlgorithm.RSA4096,
                   key_rotation=timedelta(days=150), crl_lifetime=CRL),
    ImageSetPolicy("ci", ("ci-*.sif",), "ephemeral", key_algorithm=KeyAlgorithm.ED25519,
                   identity=IDENTITY, crl_lifetime=CRL),
]
CHECKED_AFTER = (0, 35, 125, 135, 190, 300)
"""Days after the start: just signed (ephemeral certificates still valid), mid-certificate,
inside web's first overlap (day 120 to 140), after it, after apps rotated (day 150) and its
overlap ended, and later."""


@pytest.mark.slow
def test_every_claim_of_every_strategy_and_key_type(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, SETS)
    vkey = create_log(fleet.url, "test.example/log", tmp_path / "tlog-key.json", PASSPHRASE)
    log = local_client(fleet.url, tmp_path / "tlog-key.json", PASSPHRASE)
    assert isinstance(log, LocalLogClient)
    log.log.clock = lambda: fleet.now
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca, log)
    run_due(ctx, fleet.now)
    for name in ("base", "hpc", "web", "apps"):
        fleet.signed_images(name, 1)
    stranger = fleet.image("base-stranger")  # signed by a key the store does not know
    sign_image(str(stranger), DsseSigner((generate_private_key(KeyAlgorithm.P256),)),
               SignOptions())
    ci = [fleet.image(f"ci-{i}") for i in range(2)]
    fleet.track(stranger, *ci)
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    oracle = Oracle()
    for days in CHECKED_AFTER:
        target = T0 + timedelta(days=days)
        while True:  # jump from one action window to the next, as the service would
            run_due(ctx, fleet.now)
            if fleet.now >= target:
                break
            upcoming = [a.not_before for a in plan(fleet.state(), fleet.policies, fleet.now)
                        if a.not_before > fleet.now]
            fleet.now = min([target, *upcoming])
        data = build_report(fleet.engine, config, fleet.now)
        check_report(oracle, data, fleet.policies, fleet.engine, vkey)
        assert {f.image_set for f in data.forecasts} == {s.name for s in SETS}
    assert oracle.violations == []
    # The report's own check (verify_images) confirms the logged images through the log, and
    # refutes one whose bytes changed since it was signed.
    confirmed = build_report(fleet.engine, config, fleet.now, verify_images=True)
    assert confirmed.forecasts == data.forecasts
    tamper(ci[0])
    refuted = build_report(fleet.engine, config, fleet.now, verify_images=True)
    [changed] = [f for f in refuted.forecasts if f.path == str(ci[0])]
    assert not changed.tool.verifies and changed.tool.basis.startswith("verification fails now")
    for kind in ("certificate-now", "certificate-until", "certificate-no",
                 "certificate-ephemeral", "key-now", "key-no", "tool-logged", "tool-renewed",
                 "tool-no"):
        assert oracle.checked[kind] > 0, (kind, oracle.checked)
