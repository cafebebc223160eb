"""``lifecycle.demo`` in-process: three simulated years of all three strategies, then the bundle
verifies every image offline, ephemeral ones through the log years after their certificates
expired. The fresh-clone run of ``scripts/demo`` is tests/test_quickstart.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from lifecycle.config import load_config
from lifecycle.demo import MARKER, DemoError, DemoResult, next_steps, prepare_workspace
from lifecycle.integrity.pgp_validity import expiry_at
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.model.fleet import day
from lifecycle.service.http import RevocationSource, start_http
from lifecycle.store.ca_service import CaService
from lifecycle.store.db import make_engine
from lifecycle.store.key_service import KeyService
from tests.sks import Sks

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_three_years_of_every_strategy(demo: tuple[DemoResult, list[str]]) -> None:
    result, lines = demo
    assert result.ok, [r for _, _, r in result.history if not r.ok]
    assert (result.ended - result.started).days == 3 * 365
    done = Counter((a.image_set, a.kind) for _, a, r in result.history if r.status == "done")
    assert done[("apps", "rotate")] == 3 and done[("apps", "drop")] == 1 + 2
    assert done[("apps", "retire")] == 2 and done[("apps", "resign")] == 1 + 2 + 2
    assert done[("base", "reissue")] >= 17 and done[("base", "rotate")] == 0
    assert done[("ci", "sign-ephemeral")] == 2  # ci-tool at the start, ci-nightly in year 2
    assert done[("legacy", "extend")] == 4  # every 2/3 of 365 days; never re-signed
    assert done[("legacy", "resign")] == 0 and done[("legacy", "publish-pgp-key")] == 1 + 4
    keys = Counter(a.key for _, a, r in result.history if r.status == "done")
    assert max(keys.values()) == 1  # nothing done twice
    assert all(a.not_before <= at <= a.due for at, a, r in result.history if r.status == "done")
    logged = [line for line in lines if "sign-ephemeral" in line]
    assert logged and all(line.strip()[:10] in {day(at) for at, _, _ in result.history}
                          for line in logged)


@pytest.mark.slow
def test_every_image_verifies_offline_against_the_bundle(
        demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    names = sorted(p.name for paths in result.images.values() for p in paths)
    assert names == sorted(["base-os.sif", "base-hpc.sif", "app-web.sif", "app-solver.sif",
                            "ci-tool.sif", "ci-nightly.sif", "legacy-tool.sif"])
    assert sorted(v.image.name for v in result.verified) == names
    assert all(v.ok and v.command[:4] == ["sif-lifecycle", "verify", "--bundle",
                                          "bundle.tar.gz"] and len(v.command) == 5
               for v in result.verified)  # every kind of image: the bundle and nothing else
    ci_tool = next(v for v in result.verified if v.image.name == "ci-tool.sif")
    assert f"logged {day(result.started)}" in ci_tool.output  # three years ago, still valid
    report = result.report
    assert report is not None and report.name == "report.html" and report.stat().st_size > 0
    listing = (result.workspace / "report.json").read_text()
    assert all(name in listing for name in names)
    assert result.bundle is not None and result.bundle.is_file()
    assert (result.workspace / "passphrase.txt").stat().st_mode & 0o777 == 0o600
    steps = "\n".join(next_steps(result))
    assert str(result.workspace) in steps and "verify --bundle" in steps


@pytest.mark.slow
def test_a_tampered_image_fails_the_printed_command(demo: tuple[DemoResult, list[str]],
                                                   tmp_path: Path) -> None:
    result, _ = demo
    verified = next(v for v in result.verified if v.image.name == "ci-nightly.sif")
    copy = tmp_path / "images" / "ci" / "ci-nightly.sif"
    copy.parent.mkdir(parents=True)
    for name in ("bundle.tar.gz", "bundle"):
        os.symlink(result.workspace / name, tmp_path / name)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifecycle.cli.main", *verified.command[1:]], cwd=tmp_path,
            capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO),
                 "SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "trust")})

    data = bytearray(verified.image.read_bytes())
    copy.write_bytes(bytes(data))
    assert verify().returncode == 0
    data[-100] ^= 0xFF  # inside the last data object
    copy.write_bytes(bytes(data))
    done = verify()
    assert done.returncode == 1, done.stdout + done.stderr


def test_the_workspace_is_recreated_but_nothing_else_is_touched(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    prepare_workspace(ours)
    (ours / "leftover").write_text("x")
    prepare_workspace(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("precious")
    with pytest.raises(DemoError, match="not a demo workspace"):
        prepare_workspace(theirs)
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli.main", "demo", "--workspace",
                           str(theirs)], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and str(theirs) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (theirs / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_workspace(empty)  # an empty directory is fine
    assert (empty / MARKER).exists()


@pytest.mark.slow
def test_the_pgp_set_is_on_the_keyserver_with_its_latest_expiry(
        demo: tuple[DemoResult, list[str]], keyserver: Sks) -> None:
    result, _ = demo
    (fingerprint,) = {a.fingerprint for _, a, r in result.history
                      if a.image_set == "legacy" and a.kind == "extend"}
    served = HkpClient(keyserver.url).get(fingerprint)
    assert served is not None and expiry_at(served) is not None
    assert expiry_at(served) > result.ended  # stock verify with the keyserver's key works now
    legacy = next(v for v in result.verified if v.image.name == "legacy-tool.sif")
    assert legacy.ok


@pytest.mark.interop
def test_stock_ocsp_verify_accepts_every_published_chain(
        demo: tuple[DemoResult, list[str]], stockocsp: Callable[..., subprocess.CompletedProcess[str]],
        ) -> None:
    """The stock rules (tests/interop/stockocsp) against the demo store's endpoints: each
    published chain of the key-based sets passes x509 Verify (code signing) and OCSP for the
    leaf and the intermediate. The certificates name the demo's configured responder; ``-via``
    sends the POST to this test's server on a free port."""
    result, _ = demo
    ws = result.workspace
    config = load_config(ws / "lifecycle.toml")
    service = KeyService(make_engine(config.database_url), config.key_directory)
    passphrase = (ws / "passphrase.txt").read_text(encoding="utf-8").strip().encode()
    running = start_http(RevocationSource(CaService(service, passphrase, config.ca)),
                         "127.0.0.1", 0)
    checked = 0
    try:
        for image_set in ("base", "apps"):
            published = ws / "publish" / image_set
            for leaf in sorted((published / "certificates").glob("*.pem")):
                done = stockocsp("-leaf", leaf, "-intermediates", published / "intermediate.pem",
                                 "-roots", published / "root.pem",
                                 "-via", running.url.removeprefix("http://"))
                assert done.returncode == 0, f"{image_set} {leaf.name}: {done.stdout}"
                assert done.stdout.count("ocsp ok:") == 2, done.stdout
                checked += 1
    finally:
        running.stop()
    assert checked >= 2


def _readme_commands(readme: str, tool: str) -> list[str]:
    return [line.strip() for line in readme.splitlines() if line.startswith(f"    {tool} ")]


@pytest.mark.slow
def test_every_image_verifies_with_the_bundle_alone_offline_and_quietly(
        demo: tuple[DemoResult, list[str]], tmp_path: Path) -> None:
    """Inside a network namespace, each README command for every image; stock commands'
    certificates hold on the bundle's date (openssl, with the bundle's CRLs)."""
    from tests.bundles.conftest import netns_prefix
    from tests.conftest import require_tool

    result, _ = demo
    prefix = netns_prefix()
    bundle = result.workspace / "bundle"
    readme = (bundle / "README").read_text()
    ours = _readme_commands(readme, "sif-lifecycle")
    assert "sif-lifecycle verify --bundle . IMAGE.sif" in ours
    identity = next(c for c in ours if "--identity" in c)
    assert identity.split("--identity ")[1].split()[0] in readme  # the ci set's signer
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "t")}
    env.pop("SIF_LIFECYCLE_CONFIG", None)
    for image_set, paths in result.images.items():
        for image in paths:
            for command in ours:
                if "--identity" in command and image_set != "ci":
                    continue  # the set-specific line is for that set's images
                args = [a if a != "IMAGE.sif" else str(image) for a in command.split()[1:]]
                done = subprocess.run([*prefix, sys.executable, "-m", "lifecycle.cli.main",
                                       *args], cwd=bundle, capture_output=True, text=True,
                                      check=False, env=env)
                assert done.returncode == 0, (command, image, done.stdout + done.stderr)
                if "IMAGE.sif" in command:
                    assert done.stderr == "", done.stderr  # quiet on success
                    assert f"Container verified: {image}" in done.stdout
    stock = _readme_commands(readme, "singularity")
    certificates = [c.split("--certificate ")[1].split()[0] for c in stock if "--certificate " in c]
    assert certificates and all(not c.startswith("historical/") for c in certificates)
    created = next(line.split()[1] for line in readme.splitlines() if line.startswith("Created:"))
    at = str(int(datetime.fromisoformat(created).timestamp()))
    crls = [a for c in sorted((bundle / "crls").iterdir()) for a in ("-CRLfile", str(c))]
    for cert in certificates:
        done = subprocess.run([require_tool("openssl"), "verify", "-attime", at, "-CAfile",
                               "certs/roots.pem", "-untrusted", "certs/intermediates.pem",
                               "-crl_check_all", *crls, cert], cwd=bundle, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, (cert, done.stdout + done.stderr)
    assert len(certificates) < 10  # not every expired generation of three years
    ci = readme.split("Image set ci (ephemeral)")[1].split("Historical (retired")[0].split(
        "Image set ")[0]
    assert "sif-lifecycle verify --bundle . IMAGE.sif" in ci and "cannot verify" in ci
    assert "singularity verify" not in ci  # no stock command for an ephemeral set
    legacy = readme.split("Image set legacy (reissue)")[1].split("Historical (retired")[0]
    assert "singularity verify --local IMAGE.sif" in legacy  # after importing the keyring
    for name in ("base (reissue)", "apps (resign)"):
        assert "singularity verify --certificate" in readme.split(f"Image set {name}")[1].split(
            "Image set ")[0]
    files = sum(1 for p in bundle.rglob("*") if p.is_file())
    assert f"Files:        {files}\n" in readme
    assert f"bundle bundle.tar.gz: {files} files" in "\n".join(demo[1])


@pytest.mark.slow
def test_bundle_export_takes_the_configured_log_and_identities(
        demo: tuple[DemoResult, list[str]], tmp_path: Path) -> None:
    """``bundle export`` with the demo's config alone: [tlog] and the ci identity go in; a
    different --identity with --bundle is refused. (Last: it adds an export to the store.)"""
    from lifecycle.bundles import manifest as mf
    from lifecycle.bundles.archive import read_bundle

    result, _ = demo
    ws = result.workspace
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_CONFIG": str(ws / "lifecycle.toml"),
           "SIF_LIFECYCLE_PASSPHRASE": (ws / "passphrase.txt").read_text().strip(),
           "SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "trust")}

    def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lifecycle.cli.main", *map(str, args)],
                              cwd=ws, capture_output=True, text=True, check=False, env=env)

    out = tmp_path / "site.tar.gz"
    done = cli("bundle", "export", out)
    assert done.returncode == 0, done.stdout + done.stderr
    files = read_bundle(out)
    manifest = mf.Manifest.decode(files[mf.MANIFEST])
    assert "tlog/checkpoint.txt" in files and manifest.log_origin
    assert manifest.identities == ("https://ci.demo.example/pipelines/main",)
    assert f"{len(files)} files" in done.stdout and manifest.file_count == len(files)
    ci = ws / "images" / "ci" / "ci-tool.sif"
    assert cli("verify", "--bundle", out, ci).returncode == 0
    other = cli("verify", "--bundle", out, "--identity", "mallory@example.org", ci)
    assert other.returncode == 1 and "does not match the accepted identities" in other.stderr
    named = cli("verify", "--bundle", out, "--identity", manifest.identities[0], ci)
    assert named.returncode == 0, named.stdout + named.stderr
