"""track, scan, images, plan and apply through the command line, on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.sif import create_image, json_spec, partition_spec

PASSPHRASE = "cli test passphrase"


def run(runner: CliRunner, config: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, [args[0], "--config", str(config), *args[1:]],
                           env={"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == code, result.output
    return result.output


def test_plan_apply_track_rotate(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[database]\npath = "db.sqlite"\n'
        '[[image_sets]]\nname = "apps"\npaths = ["images/*.sif"]\nstrategy = "resign"\n'
        'publish_directory = "publish"\n', encoding="utf-8")
    runner = CliRunner()
    for command in (["db", "upgrade"], ["ca", "init"]):
        assert runner.invoke(cli, [*command, "--config", str(config)],
                             env={"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE}).exit_code == 0
    planned = json.loads(run(runner, config, "plan", "--json"))
    ready = [a["kind"] for a in planned["actions"] if a["ready"]]
    assert "provision" in ready and "rotate" not in ready
    assert "provision" in run(runner, config, "apply", "--dry-run")
    out = run(runner, config, "apply")
    assert any(line.split()[:3] == ["done", "provision", "apps"] for line in out.splitlines())
    assert run(runner, config, "apply").strip() == "nothing to do"
    manifest = json.loads((tmp_path / "publish" / "manifest.json").read_text())
    [key] = manifest["keys"]
    key_file = tmp_path / "keys" / f"{key['fingerprint']}.key.pem"
    old_public = tmp_path / "publish" / "keys" / f"{key['fingerprint']}.pub"
    old_public = Path(old_public.rename(tmp_path / "old.pub"))  # kept for after the rotation
    (tmp_path / "images").mkdir()
    image = create_image(tmp_path / "images" / "a.sif",
                         [partition_spec(b"hsqs" + bytes(100)), json_spec({"a": 1})])
    signed = runner.invoke(cli, ["sign", "--key", str(key_file), str(image)],
                           env={"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE})
    assert signed.exit_code == 0, signed.output
    assert "1 new" in run(runner, config, "track", str(image))
    listed = json.loads(run(runner, config, "images", "--json"))
    assert listed[0]["image_set"] == "apps" and listed[0]["signers"] == [key["dsse_keyid"]]
    today = datetime.now(UTC)
    in_a_year = (today + timedelta(days=366)).isoformat()
    future = run(runner, config, "plan", "--at", in_a_year)
    assert "rotate" in future and f"has been active since {today:%Y-%m-%d}" in future
    copy = tmp_path / "in-a-year"
    applied = json.loads(run(runner, config, "apply", "--at", in_a_year, "--simulate",
                             str(copy), "--json"))
    assert {r["kind"] for r in applied if r["status"] == "done"} >= {"rotate", "resign"}
    copied = Path(f"{copy}/images/{str(image).lstrip('/')}")
    verified = runner.invoke(cli, ["verify", "--key", str(old_public), str(copied)],
                             env={"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE})
    assert verified.exit_code == 0, verified.output  # the old key still verifies (overlap)
    assert "0 new" in run(runner, copy / "config.toml", "scan", "--at", in_a_year)


def test_track_refuses_a_non_sif_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "db.sqlite"\n', encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    bogus = tmp_path / "x.sif"
    bogus.write_bytes(b"not a sif")
    result = runner.invoke(cli, ["track", "--config", str(config), str(bogus)])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {bogus}:")
