"""The ephemeral strategy: planned for unsigned or unlogged images, applied through a log kept
in the store's database, verified offline by the CLI's long-term verification."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import ImageSetPolicy, load_config
from lifecycle.errors import PolicyError
from lifecycle.pki import keys as pki_keys
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.service.transparency import create_log, local_client
from lifecycle.store.ca_service import ROOT
from lifecycle.strategies.apply import ApplyContext, ApplyStatus, apply
from lifecycle.strategies.due import run_due
from lifecycle.strategies.plan import plan
from lifecycle.tlog.client import LocalLogClient
from tests.pki.conftest import PASSPHRASE
from tests.strategies.conftest import Fleet, make_fleet

REPO = Path(__file__).resolve().parents[2]
IDENTITY = "ci@example.org"
CI = ImageSetPolicy("ci", ("ci-*.sif",), "ephemeral", identity=IDENTITY)


def _fleet_with_log(tmp_path: Path, url: str = "") -> tuple[Fleet, ApplyContext, str]:
    fleet = make_fleet(tmp_path, [CI], url)
    vkey = create_log(fleet.url, "test.example/log", tmp_path / "tlog-key.json", PASSPHRASE)
    log = local_client(fleet.url, tmp_path / "tlog-key.json", PASSPHRASE)
    return fleet, ApplyContext(fleet.engine, fleet.policies, fleet.ca, log), vkey


def _verify(fleet: Fleet, vkey: str, image: Path, identity: str = IDENTITY
            ) -> subprocess.CompletedProcess[str]:
    root = fleet.root / "root.pem"
    root.write_bytes(certificate_pem(fleet.ca.certificate(ROOT)))
    return subprocess.run(
        [sys.executable, "-m", "lifecycle.cli.main", "verify", "--log-key", vkey,
         "--identity", identity, "--certificate-roots", str(root), "--revocation", "soft-fail",
         str(image)], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)})


def test_new_images_are_signed_once_and_verify_offline(tmp_path: Path) -> None:
    fleet, ctx, vkey = _fleet_with_log(tmp_path)
    images = [fleet.image(f"ci-{i}") for i in range(2)]
    fleet.track(*images)
    results = run_due(ctx, fleet.now)
    signed = [r for r in results if r.kind == "sign-ephemeral"]
    assert [r.status for r in signed] == ["done", "done"], results
    assert all(IDENTITY in r.detail and "test.example/log #" in r.detail for r in signed)
    assert not [a for a in plan(fleet.state(), fleet.policies, fleet.now)
                if a.kind == "sign-ephemeral"]
    fleet.now += timedelta(days=400)  # the certificate expired long ago: the log vouches
    for image in images:
        ok = _verify(fleet, vkey, image)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "Logged signature" in ok.stdout and IDENTITY in ok.stdout
    wrong = _verify(fleet, vkey, images[0], "mallory@example.org")
    assert wrong.returncode == 1


@pytest.mark.postgres
def test_signed_through_a_log_in_the_same_postgres_database(tmp_path: Path, pg_url: str) -> None:
    fleet, ctx, vkey = _fleet_with_log(tmp_path, pg_url)
    image = fleet.image("ci-0")
    fleet.track(image)
    assert [r.status for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"] == ["done"]
    assert fleet.state().logged[IDENTITY]
    assert not [a for a in fleet.plan() if a.kind == "sign-ephemeral"]
    assert _verify(fleet, vkey, image).returncode == 0


def test_apply_is_idempotent_and_finds_signatures_made_elsewhere(tmp_path: Path) -> None:
    from lifecycle.ephemeral import sign_ephemeral

    fleet, ctx, _ = _fleet_with_log(tmp_path)
    image = fleet.image("ci-0")
    fleet.track(image)
    [action] = [a for a in plan(fleet.state(), fleet.policies, fleet.now)
                if a.kind == "sign-ephemeral"]
    assert apply(action, ctx, fleet.now).status == "done"
    again = apply(action, ctx, fleet.now)
    assert again.status == ApplyStatus.SKIPPED and "already carries" in again.detail
    # Signed by a CI job with the same identity, outside the service: found, not re-signed.
    other = fleet.image("ci-1")
    assert isinstance(ctx.log, LocalLogClient)
    ctx.log.log.clock = lambda: fleet.now  # the CI job's log runs on the simulated clock too
    sign_ephemeral(str(other), IDENTITY, fleet.ca, ctx.log, now=fleet.now)
    fleet.track(other)
    before = other.read_bytes()
    results = run_due(ctx, fleet.now)
    assert [(r.subject, r.status) for r in results if r.kind == "sign-ephemeral"] == [
        (str(other), ApplyStatus.SKIPPED)]
    assert other.read_bytes() == before
    assert not [a for a in plan(fleet.state(), fleet.policies, fleet.now)
                if a.kind == "sign-ephemeral"]


def test_unverifiable_signatures_are_refused_and_tampered_images_left_alone(
        tmp_path: Path) -> None:
    fleet, ctx, _ = _fleet_with_log(tmp_path)
    foreign = fleet.image("ci-foreign")
    from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image

    sign_image(str(foreign), DsseSigner((pki_keys.generate_private_key(KeyAlgorithm.P256),)),
               SignOptions())
    fleet.track(foreign)
    [result] = [r for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"]
    assert result.status == "refused" and "do not verify" in result.detail
    assert fleet.status(foreign) == "tampered"
    assert not [a for a in plan(fleet.state(), fleet.policies, fleet.now)
                if a.kind == "sign-ephemeral"]


def test_a_rebuilt_image_is_signed_again(tmp_path: Path) -> None:
    fleet, ctx, vkey = _fleet_with_log(tmp_path)
    image = fleet.image("ci-0")
    fleet.track(image)
    run_due(ctx, fleet.now)
    fleet.now += timedelta(days=30)
    image.unlink()
    fleet.image("ci-0", b"rebuilt")  # same path, new unsigned content
    fleet.track(image)
    results = [r for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"]
    assert [r.status for r in results] == ["done"]
    assert _verify(fleet, vkey, image).returncode == 0


def test_without_a_log_the_action_fails_with_the_fix(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [CI])
    fleet.track(fleet.image("ci-0"))
    [result] = [r for r in fleet.run() if r.kind == "sign-ephemeral"]
    assert result.status == "failed" and "[tlog]" in result.detail


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_config_ephemeral_settings_and_tlog_section(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, '[tlog]\norigin = "x.example/log"\n'
                                 'key_file = "k.json"\n[[image_sets]]\nname = "ci"\n'
                                 'paths = ["*.sif"]\nstrategy = "ephemeral"\n'
                                 'identity = "https://ci.example.org/p"\n'
                                 'certificate_lifetime_minutes = 5\n'))
    [policy] = config.policies.image_sets
    assert policy.identity == "https://ci.example.org/p"
    assert policy.ephemeral_lifetime == timedelta(minutes=5)
    assert config.tlog is not None and config.tlog.key_file == tmp_path / "k.json"
    assert config.tlog.database_url == config.database_url and config.tlog.url is None


@pytest.mark.parametrize(("body", "reason"), [
    ('strategy = "ephemeral"', "identity: required"),
    ('strategy = "ephemeral"\nidentity = "not an identity"', "neither an email"),
    ('strategy = "ephemeral"\nidentity = "a@b.org"\ncertificate_lifetime_minutes = 0',
     "1 to 1440"),
    ('strategy = "ephemeral"\nidentity = "a@b.org"\nkey_algorithm = "rsa3072"',
     "ephemeral keys are"),
    ('strategy = "reissue"\nidentity = "a@b.org"', "only applies"),
])
def test_bad_ephemeral_settings_name_the_key(tmp_path: Path, body: str, reason: str) -> None:
    path = _config(tmp_path, f'[[image_sets]]\nname = "ci"\npaths = ["*.sif"]\n{body}\n')
    with pytest.raises(PolicyError, match=reason) as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.slow
def test_tlog_commands_default_to_the_config_log(tmp_path: Path) -> None:
    path = _config(tmp_path, '[database]\npath = "store.db"\n[tlog]\norigin = "x.example/log"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_CONFIG": str(path),
           "SIF_LIFECYCLE_PASSPHRASE": "ephemeral test passphrase"}
    env.pop("SIF_LIFECYCLE_TLOG_DB", None)
    env.pop("SIF_LIFECYCLE_TLOG_KEY", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lifecycle.cli.main", "tlog", *args],
                              capture_output=True, text=True, check=False, env=env,
                              cwd=tmp_path / "elsewhere")

    (tmp_path / "elsewhere").mkdir()
    init = cli("init")
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "tlog-key.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "store.db").exists() and not (tmp_path / "elsewhere" / "tlog.db").exists()
    assert cli("verifier-key").stdout == init.stdout
    assert cli("checkpoint").stdout.startswith("x.example/log\n0\n")
