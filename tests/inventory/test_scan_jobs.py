"""``scan --full`` reads images on a worker pool: the inventory is the same with one or two jobs."""

from __future__ import annotations

from pathlib import Path

from lifecycle.config import ImageSetPolicy
from lifecycle.inventory.scan import scan
from tests.inventory.tamper import strip_and_modify
from tests.strategies.conftest import make_fleet

APPS = ImageSetPolicy("apps", ("apps-*.sif",), "resign")


def test_scan_with_two_jobs_records_what_one_job_does(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [APPS])
    fleet.run()
    images = fleet.signed_images("apps", 5)
    strip_and_modify(images[3])
    (tmp_path / "images" / "apps-junk.sif").write_bytes(b"not a SIF image")
    roots = [str(tmp_path / "images")]
    one = scan(fleet.engine, roots, fleet.now, full=True, policies=fleet.policies, jobs=1)
    two = scan(fleet.engine, roots, fleet.now, full=True, policies=fleet.policies, jobs=2)
    assert one.tampered == two.tampered == [str(images[3])]
    assert sorted(one.changed) == sorted(two.changed)
    assert one.errors == two.errors and len(one.errors) == 1 and "apps-junk.sif" in one.errors[0]
