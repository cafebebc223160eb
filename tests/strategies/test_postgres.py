"""The same lifecycle on PostgreSQL: state loading, planning, rotation and re-signing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import ImageSetPolicy
from tests.strategies.conftest import make_fleet
from tests.strategies.trust import check_image

WEB = ImageSetPolicy("web", ("web-*.sif",), "resign", overlap=timedelta(days=30))


@pytest.mark.slow
@pytest.mark.postgres
def test_rotation_and_resign_on_postgres(tmp_path: Path, pg_url: str) -> None:
    fleet = make_fleet(tmp_path, [WEB], pg_url)
    fleet.run()
    old = fleet.active_key("web")
    paths = fleet.signed_images("web", 2)
    assert {i.path for i in fleet.state().images} == {str(p) for p in paths}
    fleet.now += timedelta(days=365)
    done = [r.kind for r in fleet.run() if r.status == "done"]
    assert done.count("rotate") == 1 and done.count("resign") == 2
    new = fleet.active_key("web")
    for path in paths:
        assert check_image(path, tmp_path / "publish" / "web", fleet.now) == sorted([old, new])
    assert [a for a in fleet.plan() if a.ready(fleet.now)] == []
