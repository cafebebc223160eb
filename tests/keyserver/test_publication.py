"""``publish-pgp-key``: planned from the model, pushed to a real sks, retried while it is down."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.config import ImageSetPolicy, KeyserverSettings
from lifecycle.inventory.fleet import link_key
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.model.fleet import ActionKind, ApplyStatus, FleetState
from lifecycle.pki.pgp import PgpAlgorithm, pgp_content_digest
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.strategies.apply import ApplyContext, apply
from lifecycle.strategies.plan import key_publications
from tests.pki.conftest import PASSPHRASE
from tests.sks import free_port
from tests.strategies.conftest import Fleet, make_fleet

CI = ImageSetPolicy("ci", ("ci-*.sif",), "ephemeral", identity="ci@example.org")


def with_keyservers(fleet: Fleet, *urls: str) -> None:
    fleet.policies = replace(fleet.policies, keyservers=KeyserverSettings(
        tuple(urls), timeout=timedelta(seconds=2), retries=0))


def pgp_key_in_set(fleet: Fleet, image_set: str = "ci") -> str:
    row = fleet.ca.keys.generate_pgp(PgpAlgorithm.ED25519, "Fleet Signer <fleet@example.org>",
                                     PASSPHRASE)
    link_key(fleet.engine, image_set, row.id or 0, fleet.now)
    return row.fingerprint


def publish_actions(fleet: Fleet) -> list[Any]:
    return [a for a in fleet.plan() if a.kind is ActionKind.PUBLISH_PGP_KEY]


def test_planner_publishes_what_a_keyserver_lacks() -> None:
    from datetime import UTC, datetime

    from lifecycle.config import Policies
    from lifecycle.model.fleet import KeyInfo
    from lifecycle.model.key_state import KeyState

    now = datetime(2030, 1, 1, tzinfo=UTC)
    key = KeyInfo("AB" * 20, "", KeyState.ACTIVE, now, now, None, "ci")
    stray = KeyInfo("CD" * 20, "", KeyState.ACTIVE, now, now, None, None)
    policies = Policies((CI,), keyservers=KeyserverSettings(("hkp://a", "hkp://b")))
    state = FleetState(keys=(key, stray), pgp_keys={key.fingerprint: "d1", stray.fingerprint: "d9"},
                       key_publications=frozenset({(key.fingerprint, "d1", "hkp://a")}))
    (action,) = key_publications(state, policies, now)
    assert action.key == f"publish-pgp-key:{key.fingerprint}:d1"
    assert "is not yet on hkp://b" in action.reason and action.due == now
    done = replace(state, key_publications=state.key_publications | {(key.fingerprint, "d1", "hkp://b")})
    assert key_publications(done, policies, now) == []
    changed = replace(done, pgp_keys={key.fingerprint: "d2"})
    assert [a.revision for a in key_publications(changed, policies, now)] == ["d2"]
    assert key_publications(state, Policies((CI,)), now) == []


def test_published_once_then_skipped_and_republished_on_change(tmp_path: Path, sks: Any) -> None:
    fleet = make_fleet(tmp_path, [CI])
    with_keyservers(fleet, sks.url)
    fpr = pgp_key_in_set(fleet)
    (action,) = publish_actions(fleet)
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca)
    first = apply(action, ctx, fleet.now)
    assert first.status is ApplyStatus.DONE, first
    assert f"to {sks.url}" in first.detail
    assert HkpClient(sks.url).get(fpr) is not None
    assert publish_actions(fleet) == []
    assert apply(action, ctx, fleet.now).status is ApplyStatus.SKIPPED
    # A new self-signature changes the key's content: the new version is planned and pushed.
    row = fleet.ca.keys.get(fpr)
    path = fleet.ca.keys.files.path(row.file)
    key = fleet.ca.keys.pgp_key(row)
    with key.unlock(PASSPHRASE.decode()):
        uid = key.userids[0]
        # made after the key (created at the fleet's simulated time), so it is the newest
        uid |= key.certify(uid, key_expiration=timedelta(days=800),
                           created=fleet.now + timedelta(hours=1))
    path.write_text(str(key))
    (again,) = publish_actions(fleet)
    assert again.revision == pgp_content_digest(key) != action.revision
    assert apply(again, ctx, fleet.now).status is ApplyStatus.DONE
    served = HkpClient(sks.url).get(fpr)
    assert served.expires_at is not None


def test_a_keyserver_outage_fails_then_the_retry_publishes(tmp_path: Path, sks: Any) -> None:
    fleet = make_fleet(tmp_path, [CI])
    down = f"http://127.0.0.1:{free_port()}"
    with_keyservers(fleet, sks.url, down)
    fpr = pgp_key_in_set(fleet)
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca)
    (action,) = publish_actions(fleet)
    failed = apply(action, ctx, fleet.now)
    assert failed.status is ApplyStatus.FAILED
    assert failed.detail.startswith(f"{down}: did not answer")
    assert f"published to {sks.url}" in failed.detail
    (pending,) = publish_actions(fleet)
    assert pending.key == action.key and pending.reason.endswith(f"is not yet on {down}")
    # Now sks itself goes down for a while: the retry fails again, nothing is recorded twice.
    with_keyservers(fleet, sks.url)
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca)
    row = fleet.ca.keys.get(fpr)
    key = fleet.ca.keys.pgp_key(row)
    with key.unlock(PASSPHRASE.decode()):
        uid = key.userids[0]
        # made after the key (created at the fleet's simulated time), so it is the newest
        uid |= key.certify(uid, key_expiration=timedelta(days=800),
                           created=fleet.now + timedelta(hours=1))
    fleet.ca.keys.files.path(row.file).write_text(str(key))
    (extended,) = publish_actions(fleet)
    sks.stop()
    assert apply(extended, ctx, fleet.now).status is ApplyStatus.FAILED
    sks.start()
    assert apply(extended, ctx, fleet.now).status is ApplyStatus.DONE
    assert apply(extended, ctx, fleet.now).status is ApplyStatus.SKIPPED
    assert publish_actions(fleet) == []
    with session_scope(fleet.engine) as session:
        pushes = [(e.subject, e.detail) for e in audit.entries(session, action="keyserver.publish")]
        results = [e.detail for e in audit.entries(session, action="action.publish-pgp-key")]
    assert [subject for subject, _ in pushes] == [fpr, fpr]
    assert [r.split('"result": "')[1].split('"')[0] for r in results] == \
        ["failed", "failed", "done", "skipped"]
    assert HkpClient(sks.url).get(fpr).expires_at is not None


def test_the_service_source_plans_it_and_fails_so_the_queue_retries(tmp_path: Path,
                                                                   sks: Any) -> None:
    from lifecycle.config import Config
    from lifecycle.errors import ServiceError
    from lifecycle.service.planner_source import PlannerSource
    from lifecycle.service.work import SourceContext

    fleet = make_fleet(tmp_path, [CI])
    with_keyservers(fleet, sks.url)
    fpr = pgp_key_in_set(fleet)
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    source = PlannerSource(SourceContext(config, fleet.engine, PASSPHRASE, fleet.ca))
    (action,) = [a for a in source.plan_actions(fleet.now) if a["kind"] == "publish-pgp-key"]
    assert action["key"].startswith(f"publish-pgp-key:{fpr}:")
    sks.stop()
    with pytest.raises(ServiceError, match=re.escape(f"publish-pgp-key {fpr}: {sks.url}: did not answer")):
        source.apply(action, fleet.now)
    sks.start()
    assert source.apply(action, fleet.now)["status"] == "done"
    assert not [a for a in source.plan_actions(fleet.now) if a["kind"] == "publish-pgp-key"]
