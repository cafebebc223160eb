"""The planner's model is pure, and actions keep loading from what the work queue stored."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from lifecycle.model.fleet import Action, ActionKind

T = datetime(2027, 1, 1, tzinfo=UTC)


def test_the_planner_loads_without_sqlalchemy() -> None:
    code = "import sys, lifecycle.strategies.plan; assert 'sqlalchemy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("doc", "fingerprint", "revision"), [
    ({"key": "resign:/srv/a:b.sif:ABCD", "kind": "resign", "subject": "/srv/a:b.sif",
      "image_set": "apps"}, "ABCD", ""),
    ({"key": "rotate:apps:ABCD", "kind": "rotate", "subject": "ABCD", "image_set": "apps"},
     "ABCD", ""),
    ({"key": "certify:ABCD:2", "kind": "certify", "subject": "ABCD", "image_set": "apps"}, "", "2"),
    ({"key": "crl-refresh:root:7", "kind": "crl-refresh", "subject": "root"}, "", "7"),
    ({"key": "provision:apps", "kind": "provision", "subject": "apps", "image_set": "apps"}, "", ""),
])
def test_old_queue_rows_load_with_their_fields(doc: dict[str, str], fingerprint: str,
                                               revision: str) -> None:
    """Rows written before Action had named fields carry them only inside the key."""
    old = doc | {"due": T.isoformat(), "not_before": T.isoformat(), "reason": "why"}
    action = Action.from_dict(old)
    assert (action.key, action.fingerprint, action.revision) == (doc["key"], fingerprint, revision)
    assert Action.from_dict(action.to_dict()) == action


def test_a_key_that_does_not_match_the_fields_is_refused() -> None:
    action = Action(ActionKind.DROP, "/srv/x.sif", T, T, "why", "apps", "ABCD")
    assert action.key == "drop:/srv/x.sif:ABCD"
    with pytest.raises(ValueError, match="does not match"):
        Action.from_dict(action.to_dict() | {"key": "drop:/srv/x.sif:OTHER"})
    with pytest.raises(ValueError):
        Action.from_dict(action.to_dict() | {"kind": "explode"})
