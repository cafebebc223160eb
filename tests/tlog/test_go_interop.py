"""Go's reference log code (golang.org/x/mod/sumdb/{note,tlog}) accepts what our log publishes.

The Go program in tests/interop/tlogcheck is built once per session in GOPATH mode against
Debian's golang-golang-x-mod-dev, offline. Without a Go toolchain the test fails under CI=true
and is reported as an error elsewhere too: interop is a requirement, not an extra.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log, NoteSigner
from lifecycle.tlog.merkle import stored_hash_count

from .conftest import ORIGIN, submission

pytestmark = pytest.mark.interop

SOURCE = Path(__file__).resolve().parents[1] / "interop" / "tlogcheck"
GOCODE = Path("/usr/share/gocode")


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    missing = [] if go else ["go (apt-get install golang-go)"]
    if not (GOCODE / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        missing.append("golang.org/x/mod (apt-get install golang-golang-x-mod-dev)")
    if missing:
        pytest.fail(f"the Go interop check needs {', '.join(missing)}; scripts/test installs them")
    work = tmp_path_factory.mktemp("tlogcheck")
    binary = work / "tlogcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{work / 'gopath'}:{GOCODE}",
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
    }
    subprocess.run(
        [str(go), "build", "-o", str(binary), "."], cwd=SOURCE, env=env, check=True, timeout=300
    )
    return binary


def run_check(binary: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary)], input=json.dumps(document), capture_output=True, text=True, timeout=60
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def published(sqlite_engine: Engine, signer: NoteSigner) -> dict[str, Any]:
    """A 37-entry log's checkpoints at several sizes, its leaves, stored hashes and proofs."""
    storage = SqlLogStorage(sqlite_engine)
    log = Log(storage, ORIGIN, signer)
    sizes = [1, 2, 7, 8, 16, 20, 37]
    checkpoints = []
    for n in sizes:
        log.append_many([submission(i) for i in range(log.size, n)])
        checkpoints.append(log.signed_checkpoint().decode())
    n = log.size
    return {
        "verifier_key": signer.verifier.verifier_key(),
        "checkpoints": checkpoints,
        "leaves": [b64(leaf) for leaf in storage.read_leaves(0, n)],
        "stored_hashes": [b64(h) for h in storage.read_hashes(range(stored_hash_count(n)))],
        "inclusion": [
            log.inclusion_proof(i, t).to_json() for t in sizes for i in range(t)
        ],
        "consistency": [
            log.consistency_proof(m, t).to_json() for t in sizes for m in sizes if m <= t
        ],
    }


def test_go_accepts_our_checkpoints_and_proofs(tlogcheck: Path, published: dict[str, Any]) -> None:
    result = run_check(tlogcheck, published)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("ok checkpoint") for line in lines) == 7
    assert sum(line.startswith("ok inclusion") for line in lines) == len(published["inclusion"])
    assert sum(line.startswith("ok consistency") for line in lines) == len(
        published["consistency"]
    )


def test_go_rejects_tampering(tlogcheck: Path, published: dict[str, Any]) -> None:
    forged = json.loads(json.dumps(published))
    cp = forged["checkpoints"][2]
    forged["checkpoints"][2] = cp.replace("\n7\n", "\n6\n", 1)
    proof = forged["inclusion"][40]
    proof["hashes"][0] = b64(bytes(32))
    other = NoteSigner.generate(ORIGIN).verifier.verifier_key()
    result = run_check(tlogcheck, forged)
    assert result.returncode == 1
    assert "FAIL checkpoint 2" in result.stdout
    assert f"FAIL inclusion {proof['index']}/{proof['tree_size']}: CheckRecord" in result.stdout
    result = run_check(tlogcheck, {**published, "verifier_key": other})
    assert result.returncode == 1
    assert result.stdout.count("FAIL checkpoint") == 7
