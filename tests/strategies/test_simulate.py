"""``apply --at FUTURE`` never changes the real store: refused, or applied to a --simulate copy."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.sif import create_image, json_spec, partition_spec

PASSPHRASE = "simulate test passphrase"
ENV = {"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE}


def _run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [*args, "--config", str(config)], env=ENV)
    assert result.exit_code == code, result.output
    return result.output


def _fingerprint(root: Path, skip: Path) -> dict[str, str]:
    """Every real file's hash; the database by its content (SQLite may checkpoint its WAL)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or skip in path.parents or path.suffix in (".sqlite-wal",
                                                                        ".sqlite-shm"):
            continue
        if path.suffix == ".sqlite":
            with closing(sqlite3.connect(path)) as conn:
                out[str(path)] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
        else:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.toml"
    config.write_text(
        '[database]\npath = "db.sqlite"\n'
        '[[image_sets]]\nname = "apps"\npaths = ["images/*.sif"]\nstrategy = "resign"\n'
        'publish_directory = "publish"\n', encoding="utf-8")
    _run(config, "db", "upgrade")
    _run(config, "ca", "init")
    _run(config, "apply")
    [key] = json.loads((tmp_path / "publish" / "manifest.json").read_text())["keys"]
    (tmp_path / "images").mkdir()
    image = create_image(tmp_path / "images" / "a.sif",
                         [partition_spec(b"hsqs" + bytes(100)), json_spec({"a": 1})])
    signed = CliRunner().invoke(cli, ["sign", "--key", str(tmp_path / "keys" /
                                                          f"{key['fingerprint']}.key.pem"),
                                      str(image)], env=ENV)
    assert signed.exit_code == 0, signed.output
    _run(config, "track", str(image))
    return config, image


def test_a_future_apply_is_refused_and_a_simulation_leaves_the_real_files_alone(
        tmp_path: Path) -> None:
    config, image = _workspace(tmp_path)
    copy = tmp_path / "sim"
    before = _fingerprint(tmp_path, copy)
    in_a_year = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    refused = _run(config, "apply", "--at", in_a_year, code=2)
    assert "--dry-run" in refused and "--simulate" in refused
    assert "rotate" in _run(config, "apply", "--at", in_a_year, "--dry-run")
    results = json.loads(_run(config, "apply", "--at", in_a_year, "--simulate", str(copy),
                              "--json"))
    assert {r["kind"] for r in results if r["status"] == "done"} >= {"rotate", "resign"}
    assert _fingerprint(tmp_path, copy) == before
    copied = Path(f"{copy}/images/{str(image).lstrip('/')}")
    assert hashlib.sha256(copied.read_bytes()).digest() != hashlib.sha256(
        image.read_bytes()).digest()  # the copy was re-signed, the original was not
    listed = json.loads(_run(copy / "config.toml", "images", "--json"))
    assert [i["path"] for i in listed] == [str(copied)]
    assert len(listed[0]["signers"]) == 2
    assert "nothing to do" in _run(config, "apply", "--dry-run")  # today's plan is as it was
    again = _run(config, "apply", "--at", in_a_year, "--simulate", str(copy), code=2)
    assert "not empty" in again


def test_an_at_within_the_clock_skew_applies_to_the_real_store(tmp_path: Path) -> None:
    config, _ = _workspace(tmp_path)
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert _run(config, "apply", "--at", soon).strip() == "nothing to do"


def test_a_postgres_store_cannot_be_simulated(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/x"\n',
                      encoding="utf-8")
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    out = _run(config, "apply", "--at", later, "--simulate", str(tmp_path / "sim"), code=2)
    assert "SQLite" in out and "--dry-run" in out
