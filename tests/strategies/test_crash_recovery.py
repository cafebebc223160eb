"""A ``kill -9`` of apply at any point: the next apply converges with no failed action.

The resumed run found a retiring key whose overlap was over and whose certificate had expired:
it planned both ``retire`` (its drops were done before the kill) and ``certify`` from one state,
retired it, then failed to certify a retired key. A key whose overlap is over is not certified.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.model.fleet import ActionKind, ApplyStatus
from lifecycle.strategies.apply import apply
from lifecycle.strategies.due import run_due
from tests.strategies.conftest import T0, Fleet, make_fleet
from tests.strategies.crash_worker import SETS, context

REPO = Path(__file__).resolve().parents[2]
TRIALS = 12
SEED = 20261201
ROTATED = T0 + timedelta(days=366)
AT = ROTATED + timedelta(days=200)
"""Long after the overlap of the rotated-out key, with every certificate expired."""


def _rotated_fleet(root: Path) -> Fleet:
    fleet = make_fleet(root, SETS)
    fleet.run()
    fleet.signed_images("web", 2)
    fleet.signed_images("base", 1)
    fleet.now = ROTATED
    assert not [r for r in fleet.run() if r.status == ApplyStatus.FAILED]
    fleet.now = AT
    return fleet


def test_resumed_after_the_drops_it_does_not_certify_the_retiring_key(tmp_path: Path) -> None:
    fleet = _rotated_fleet(tmp_path)
    planned = fleet.plan()
    retiring = {a.subject for a in planned if a.kind == ActionKind.DROP}
    assert retiring
    for action in planned:
        if action.kind == ActionKind.DROP:  # what the killed run had done
            assert apply(action, fleet.context(), AT).status == "done"
    results = fleet.run()
    assert [r for r in results if r.status == ApplyStatus.FAILED] == []
    assert "retire" in {r.kind for r in results if r.status == "done"}
    assert not [a for a in fleet.plan() if a.ready(AT)]


def test_a_stale_certify_of_a_retired_key_is_skipped(tmp_path: Path) -> None:
    fleet = _rotated_fleet(tmp_path)
    planned = fleet.plan()
    fleet.run()
    old = next(k for k in fleet.state().keys if k.image_set == "web" and k.state == "retired")
    stale = next((a for a in planned if a.kind == ActionKind.CERTIFY and a.subject == old.fingerprint),
                 None)
    assert stale is None  # the planner no longer asks; a queued one from before must skip
    from lifecycle.model.fleet import Action

    queued = Action(ActionKind.CERTIFY, old.fingerprint, AT, AT, "queued", "web",
                    revision="9")
    result = apply(queued, fleet.context(), AT)
    assert result.status == "skipped" and "retired" in result.detail


def _start(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.strategies.crash_worker", str(root),
                             AT.isoformat()], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_apply_killed_at_random_points_converges_without_failure(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    _rotated_fleet(root)
    template = tmp_path / "template"
    shutil.copytree(root, template)
    started = time.monotonic()
    clean = _start(root)
    out, _ = clean.communicate(timeout=300)
    duration = time.monotonic() - started
    assert clean.returncode == 0 and "failed" not in out, out
    rng = random.Random(SEED)
    failures = []
    for trial in range(TRIALS):
        shutil.rmtree(root)
        shutil.copytree(template, root)
        worker = _start(root)
        time.sleep(rng.uniform(0.1, duration))
        os.kill(worker.pid, signal.SIGKILL)
        killed, _ = worker.communicate(timeout=60)
        results = run_due(context(root, AT), AT)
        failures += [(trial, r.kind, r.subject, r.detail, killed) for r in results
                     if r.status == ApplyStatus.FAILED]
        assert all(r.ok for r in run_due(context(root, AT), AT))  # converged
    assert failures == []


def test_a_rotation_killed_between_its_two_transitions_resumes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    fleet = make_fleet(tmp_path, SETS)
    fleet.run()
    fleet.signed_images("web", 1)
    fleet.now = ROTATED
    service = type(fleet.ca.keys)
    original = service.transition
    calls = []

    def crash_on_second(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return original(self, *args, **kwargs)

    rotate = next(a for a in fleet.plan() if a.kind == "rotate")
    with monkeypatch.context() as m:
        m.setattr(service, "transition", crash_on_second)
        with pytest.raises(KeyboardInterrupt):
            apply(rotate, fleet.context(), ROTATED)
    assert [r for r in fleet.run() if r.status == ApplyStatus.FAILED] == []
    states = sorted(k.state for k in fleet.state().keys if k.image_set == "web")
    assert states == ["active", "retiring"]
