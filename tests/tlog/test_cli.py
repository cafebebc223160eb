"""The ``tlog`` commands end to end through click, on a real SQLite log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lifecycle.cli.main import cli
from lifecycle.tlog import Entry, Evidence, NoteVerifier, leaf_hash, open_checkpoint, open_timestamp

PASS = "tlog test passphrase"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIF_LIFECYCLE_PASSPHRASE", PASS)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, ["tlog", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def _add(run, i: int) -> dict:  # type: ignore[no-untyped-def]
    Path("sig.bin").write_bytes(b"signature %d" % i)
    Path("cert.pem").write_bytes(b"certificate %d" % i)
    out = run(
        "add", "--image-id", f"image-{i}", "--payload-digest", "sha256:" + "ab" * 32,
        "--signature", "sig.bin", "--certificate", "cert.pem",
    )  # fmt: skip
    return json.loads(out.stdout)


def test_init_add_get_prove_check(run) -> None:  # type: ignore[no-untyped-def]
    vkey = run("init", "--origin", "example.org/log").stdout.strip()
    verifier = NoteVerifier.from_verifier_key(vkey)
    assert run("verifier-key").stdout.strip() == vkey
    assert b"ENCRYPTED PRIVATE KEY" in Path("tlog-key.json").read_bytes()
    assert Path("tlog-key.json").stat().st_mode & 0o077 == 0

    added = [_add(run, i) for i in range(6)]
    assert [a["index"] for a in added] == list(range(6))
    ts = open_timestamp(added[2]["timestamp"].encode(), [verifier])
    assert ts.index == 2

    got = json.loads(run("get", "2", "--timestamp").stdout)
    assert got["entry"]["image_id"] == "image-2"
    assert got["leaf_hash"] == added[2]["leaf_hash"]
    assert got["timestamp"] == added[2]["timestamp"]
    leaf = json.dumps(got["entry"], sort_keys=True, separators=(",", ":")).encode()
    assert leaf_hash(leaf) == ts.leaf_hash
    assert Entry.decode(leaf).integrated_time == ts.integrated_time

    Path("old.txt").write_text(run("checkpoint", "--size", "4").stdout)
    for i in range(6, 9):
        _add(run, i)
    Path("new.txt").write_text(run("checkpoint").stdout)
    new = open_checkpoint(Path("new.txt").read_bytes(), [verifier])
    assert new.size == 9

    evidence = Evidence.from_json(json.loads(run("evidence", "2").stdout))
    assert evidence.verify([verifier]).entry.submission.image_id == "image-2"

    proof = json.loads(run("prove-inclusion", "5").stdout)
    assert proof["tree_size"] == 9 and len(proof["hashes"]) == 4

    assert "grew from 4 to 9" in run("check", "old.txt").stdout
    Path("proof.json").write_text(run("prove-consistency", "4").stdout)
    out = run(
        "check", "old.txt", "--new", "new.txt", "--proof", "proof.json", "--verifier-key", vkey
    )
    assert "grew from 4 to 9" in out.stdout


def test_check_reports_a_fork(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init", "--origin", "example.org/log")
    for i in range(5):
        _add(run, i)
    Path("old.txt").write_text(run("checkpoint").stdout)
    Path("wrong-proof.json").write_text(run("prove-consistency", "3").stdout)
    _add(run, 5)
    Path("new.txt").write_text(run("checkpoint").stdout)
    # A proof that does not connect the two checkpoints must not pass as one.
    proof = json.loads(run("prove-consistency", "5").stdout)
    proof["hashes"][0] = proof["hashes"][-1]
    Path("bad.json").write_text(json.dumps(proof))
    result = run("check", "old.txt", "--new", "new.txt", "--proof", "bad.json", code=1)
    assert "does not extend the remembered" in result.output
    result = run("check", "new.txt", "--new", "old.txt", "--proof", "wrong-proof.json", code=1)
    assert "shrank" in result.output


def test_errors_are_one_line_and_actionable(run) -> None:  # type: ignore[no-untyped-def]
    result = run("checkpoint", code=2)
    assert "run 'sif-lifecycle tlog init' first" in result.output
    run("init", "--origin", "example.org/log")
    assert "already exists" in run("init", "--origin", "x", code=2).output
    assert "entry 0 does not exist" in run("get", "0", code=2).output
    wrong = CliRunner(env={"SIF_LIFECYCLE_PASSPHRASE": "wrong"})
    result = wrong.invoke(cli, ["tlog", "checkpoint"])
    assert result.exit_code == 2 and "cannot decrypt the log key" in result.output


def test_every_help_has_an_example(run) -> None:  # type: ignore[no-untyped-def]
    for command in ["", "init", "add", "get", "evidence", "checkpoint", "prove-inclusion",
                    "prove-consistency", "check", "verifier-key"]:  # fmt: skip
        args = [command, "--help"] if command else ["--help"]
        assert "Example:" in run(*args).stdout


def test_init_takes_the_passphrase_file_it_suggests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tlog init` said "pass --passphrase-file" and then rejected the option."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIF_LIFECYCLE_PASSPHRASE", raising=False)
    runner = CliRunner()
    refused = runner.invoke(cli, ["tlog", "init", "--origin", "example.org/log"], input="")
    assert refused.exit_code == 2 and "--passphrase-file" in refused.output
    Path("pass.txt").write_text(PASS + "\n")
    made = runner.invoke(cli, ["tlog", "init", "--origin", "example.org/log",
                               "--passphrase-file", "pass.txt"])
    assert made.exit_code == 0, made.output
    vkey = made.stdout.strip()
    note = runner.invoke(cli, ["tlog", "checkpoint", "--passphrase-file", "pass.txt"])
    assert note.exit_code == 0, note.output
    assert open_checkpoint(note.stdout_bytes, [NoteVerifier.from_verifier_key(vkey)]).size == 0


@pytest.mark.parametrize("args", [("checkpoint",), ("prove-consistency", "1"), ("get", "0")])
def test_a_missing_log_database_is_refused_not_created(run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       args: tuple[str, ...]) -> None:
    missing = tmp_path / "nowhere.db"
    result = run(*args, "--db", str(missing), code=2)
    assert "no such log database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not missing.exists()
