"""Log entries whose image signature was never written are recorded and listed by `tlog check`."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import LogProofError
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.tlog import INTENT, IntentJournal, write_meta
from lifecycle.tlog import NoteSigner
from tests.ephemeral.conftest import IDENTITY, World
from tests.service.served_log import REPO, served_log

# The child signs images one after the other, through the log in the store's own database.
CHILD = """
import sys
import time
from pathlib import Path
from lifecycle.ephemeral import sign_ephemeral
from lifecycle.service.transparency import local_client
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from tests.pki.conftest import PASSPHRASE, URLS
directory = Path(sys.argv[1])
db = directory / "lifecycle.db"
ca = CaService(KeyService(make_engine(sqlite_url(db)), directory / "keys"), PASSPHRASE,
               CaSettings(urls=URLS))
class Announcing:  # says when an append returned, then dawdles: the parent's kill lands there

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def submit(self, submission):
        evidence = self.inner.submit(submission)
        print("appended", flush=True)
        time.sleep(0.2)
        return evidence


log = Announcing(local_client(str(db), directory / "tlog-key.json", PASSPHRASE))
for image in sorted(directory.glob("images/*.sif")):
    sign_ephemeral(str(image), "builder@example.org", ca, log)
    print("signed", image.name, flush=True)
"""


def _check(db: Path, checkpoint: Path) -> str:
    result = CliRunner().invoke(cli, ["tlog", "check", str(checkpoint), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_append_whose_image_was_never_written_is_listed(world: World) -> None:
    write_meta(world.ca.engine, {"origin": world.log.origin, "verifier_key": world.verifier_key})
    image = world.image()
    checkpoint = world.write("cp.txt", world.log.signed_checkpoint())
    wrong_pin = NoteSigner.generate("example.org/another-log").verifier
    with pytest.raises(LogProofError):  # appended, then the evidence fails its check: no write
        sign_ephemeral(str(image), IDENTITY, world.ca, world.client, log_keys=[wrong_pin])
    assert world.log.size == 1
    (intent,) = IntentJournal(world.ca.engine).pending()
    assert intent.image_path == str(image) and intent.entries == (("example.org/another-log", 0),)
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)  # this one completes
    assert len(IntentJournal(world.ca.engine).pending()) == 1
    out = _check(world.directory / "lifecycle.db", checkpoint)
    assert "grew from 0 to 2" in out
    (orphan,) = [line for line in out.splitlines() if line.startswith("orphan:")]
    assert str(image) in orphan and "#0" in orphan and "#1" not in orphan


@pytest.mark.slow
def test_kill_9_during_signing_leaves_every_entry_carried_or_recorded(tmp_path: Path) -> None:
    """SIGKILL a signer at seeded random moments: each log entry is in a written image (completed
    intent) or listed by `tlog check` as an orphan; none is unaccounted for."""
    from lifecycle.sif import create_image, json_spec, partition_spec

    served = served_log(tmp_path)
    (tmp_path / "images").mkdir()
    for i in range(60):
        create_image(tmp_path / "images" / f"{i:03}.sif",
                     [partition_spec(b"hsqs" + bytes(64) + bytes([i])), json_spec({"i": i})])
    db = sqlite_url(served.db)
    log_url = served.env["SIF_LIFECYCLE_TLOG_DB"]
    note = subprocess.run([sys.executable, "-m", "lifecycle.cli.main", "tlog", "checkpoint",
                           "--db", log_url], env=served.env, capture_output=True, check=True,
                          timeout=60).stdout
    checkpoint = tmp_path / "cp.txt"
    checkpoint.write_bytes(note)
    rng = random.Random(20261201)
    for round_ in range(4):  # first right after an append, then at seeded random moments
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO,
                                 env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None
        assert child.stdout.readline().startswith(b"appended"), child.communicate()[1][-2000:]
        if round_:
            time.sleep(rng.uniform(0.0, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
        assert child.stderr is not None
        child.stderr.close()
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(INTENT.select()).all()
    carried = {i for r in rows if r.completed is not None for _, i in json.loads(r.entries)}
    out = _check(served.db, checkpoint)
    size = int(out.split(" entries")[0].rsplit(" ", 1)[1])
    listed = {int(word[1:].rstrip(",")) for line in out.splitlines() if line.startswith("orphan:")
              for word in line.split() if word.startswith("#")}
    assert size > 0 and carried | listed == set(range(size)), out
    assert not carried & listed
    assert listed  # the first kill at least left an orphan, and it is listed
