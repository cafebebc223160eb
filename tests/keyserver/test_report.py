"""The report's "PGP keys on keyservers" table says what sks really serves and what is pending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifecycle.config import Config
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.model.fleet import ApplyStatus
from lifecycle.reports.gather import build_report
from lifecycle.reports.render import render
from lifecycle.store.key_publications import PublicationState
from lifecycle.strategies.apply import ApplyContext, apply
from tests.keyserver.test_publication import CI, pgp_key_in_set, publish_actions, with_keyservers
from tests.sks import free_port
from tests.strategies.conftest import make_fleet


def test_report_shows_published_and_pending(tmp_path: Path, sks: Any) -> None:
    fleet = make_fleet(tmp_path, [CI])
    down = f"http://127.0.0.1:{free_port()}"
    with_keyservers(fleet, sks.url, down)
    fpr = pgp_key_in_set(fleet)
    (action,) = publish_actions(fleet)
    ctx = ApplyContext(fleet.engine, fleet.policies, fleet.ca)
    assert apply(action, ctx, fleet.now).status is ApplyStatus.FAILED
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    report = build_report(fleet.engine, config, fleet.now)
    rows = {row.url: row for row in report.key_publications}
    assert set(rows) == {sks.url, down}
    assert rows[sks.url].state is PublicationState.PUBLISHED
    assert rows[down].state is PublicationState.PENDING and rows[down].published_at is None
    assert {row.digest for row in rows.values()} == {action.revision}
    # The claim "published" holds: sks serves the key with our self-signature.
    ours = fleet.ca.keys.pgp_key(fleet.ca.keys.get(fpr))
    served = HkpClient(sks.url).get(fpr)
    assert served.userids[0].selfsig.__sig__ == ours.userids[0].selfsig.__sig__
    markdown = render(report, "md").decode()
    assert f"| `{fpr}` | `{action.revision[:8]}` | `{sks.url}` | published |" in markdown
    assert f"| `{fpr}` | `{action.revision[:8]}` | `{down}` | pending | - |" in markdown
    html = render(report, "html").decode()
    assert '<table id="keyservers">' in html and f"<code>{down}</code>" in html
    doc = json.loads(render(report, "json"))
    assert [(p["url"], p["state"]) for p in doc["key_publications"]] == [
        (sks.url, "published"), (down, "pending")]
