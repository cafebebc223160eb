"""Every action kind, applied twice in a row, is ``skipped`` the second time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from lifecycle.config import ImageSetPolicy, KeyAlgorithm, KeyserverSettings, KeyType
from lifecycle.inventory.fleet import link_key
from lifecycle.model.fleet import Action, ActionKind, ApplyStatus
from lifecycle.model.key_state import KeyState
from lifecycle.pki.pgp import PgpAlgorithm
from lifecycle.service.transparency import create_log, local_client
from lifecycle.strategies.apply import ApplyContext, ApplyResult, apply
from lifecycle.strategies.due import run_due
from tests.conftest import require
from tests.pki.conftest import PASSPHRASE
from tests.sks import SKS, running_sks
from tests.strategies.conftest import make_fleet

WEB = ImageSetPolicy("web", ("web-*.sif",), "resign", key_rotation=timedelta(days=365),
                     overlap=timedelta(days=30), certificate_lifetime=timedelta(days=90),
                     crl_lifetime=timedelta(days=30), distribution_lead=timedelta(days=14))
CI = ImageSetPolicy("ci", ("ci-*.sif",), "ephemeral", identity="ci@example.org")
PGP = ImageSetPolicy("pgp", ("pgp-*.sif",), "resign", key_algorithm=KeyAlgorithm.ED25519,
                     key_type=KeyType.PGP, key_rotation=timedelta(days=365),
                     overlap=timedelta(days=30), certificate_lifetime=timedelta(days=90))


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> dict[ActionKind, tuple[Action, ApplyResult]]:
    """Kind -> (its first action done, the result of applying it again at once)."""
    tmp_path: Path = tmp_path_factory.mktemp("idempotent")
    fleet = make_fleet(tmp_path, [WEB, CI, PGP])
    create_log(fleet.url, "test.example/log", tmp_path / "tlog-key.json", PASSPHRASE)
    log = local_client(fleet.url, tmp_path / "tlog-key.json", PASSPHRASE)
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca, log)
    seen: dict[ActionKind, tuple[Action, ApplyResult]] = {}

    def again(action: Action, result: ApplyResult) -> None:
        if result.status == ApplyStatus.DONE and action.kind not in seen:
            seen[action.kind] = (action, apply(action, ctx, fleet.now))

    def run() -> None:
        run_due(ctx, fleet.now, again)

    run()  # provision
    fleet.signed_images("web", 2)
    fleet.signed_images("pgp", 1)
    fleet.track(fleet.image("ci-1"))
    run()  # sign-ephemeral
    active = fleet.active_key("web")
    serial = next(c.serial for c in fleet.state().certificates if c.key_fingerprint == active)
    fleet.ca.revoke(serial, x509.ReasonFlags.superseded, now=fleet.now)
    run()  # certify
    for _ in range(200):  # prepare, rotate, resign, reissue, crl-refresh, drop, retire, publish
        if {ActionKind.RETIRE, ActionKind.DROP, ActionKind.REVOKE_PGP_KEY, ActionKind.EXTEND
            } <= set(seen):
            break
        later = [a.not_before for a in fleet.plan() if a.not_before > fleet.now]
        fleet.now = min(later)
        run()
    for name in ("web", "pgp"):
        fleet.ca.keys.transition(fleet.active_key(name), KeyState.COMPROMISED, "key file leaked",
                                 at=fleet.now)
    run()  # revoke (certificate, PGP key), provision of a new key, purge
    require(Path(SKS).is_file(), "Debian package sks")
    with running_sks(tmp_path / "sks") as sks:  # publish-pgp-key
        ctx.policies = replace(ctx.policies, keyservers=KeyserverSettings((sks.url,)))
        row = fleet.ca.keys.generate_pgp(PgpAlgorithm.ED25519, "Signer <s@example.org>", PASSPHRASE)
        link_key(fleet.engine, "ci", row.id or 0, fleet.now)
        run()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(ActionKind))
def test_applying_twice_skips_the_second_time(
        twice: dict[ActionKind, tuple[Action, ApplyResult]], kind: ActionKind) -> None:
    assert kind in twice, f"the scenario never applied a {kind} action"
    action, second = twice[kind]
    assert second.status == ApplyStatus.SKIPPED, (action, second)
