"""``verify --bundle``: images verify from the bundle alone, with no network; openssl agrees."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.bundles import export
from lifecycle.bundles import layout as lay
from lifecycle.bundles import manifest as mf
from lifecycle.pki.certs import certificate_pem
from lifecycle.store.ca_service import INTERMEDIATE
from tests.bundles.conftest import Fleet, netns_prefix, run_cli, run_subprocess
from tests.conftest import require_tool

GOOD = ("good-a", "pgp-c")


@pytest.fixture
def bundle(fleet: Fleet, tmp_path: Path) -> Path:
    path = tmp_path / "site.tar.gz"
    export(fleet.ca, path, log=fleet.log())
    return path


def _trust_env(tmp_path: Path) -> dict[str, str]:
    return {"SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "trust")}


@pytest.mark.slow
def test_verify_with_bundle_inside_a_network_namespace(fleet: Fleet, bundle: Path, tmp_path: Path
                                                       ) -> None:
    prefix = netns_prefix()
    env = _trust_env(tmp_path)
    for name in GOOD:
        done = run_subprocess("verify", "--bundle", bundle, fleet.images[name], prefix=prefix,
                              env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Container verified: {fleet.images[name]}" in done.stdout
    revoked = run_subprocess("verify", "--bundle", bundle, fleet.images["revoked-b"],
                             prefix=prefix, env=env)
    assert revoked.returncode == 1
    assert "not trusted: key " in revoked.stderr and f"{fleet.revoked_serial}: " in revoked.stderr
    assert "was revoked" in revoked.stderr and "verification failed" in revoked.stderr


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every socket connect/lookup fails and is recorded (callers may swallow the error)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:] or args))
        raise OSError(101, "Network is unreachable (blocked by the test)")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_verify_with_bundle_with_sockets_blocked(fleet: Fleet, bundle: Path, tmp_path: Path,
                                                 network_attempts: list[str]) -> None:
    env = _trust_env(tmp_path)
    for name in GOOD:
        result = run_cli("verify", "--bundle", bundle, fleet.images[name], env=env)
        assert result.exit_code == 0, result.output
        assert "Container verified" in result.output
        assert "not trusted" not in result.output  # only the signer's certificates are validated
    result = run_cli("verify", "--bundle", bundle, fleet.images["revoked-b"], env=env)
    assert result.exit_code == 1
    assert "not trusted: key " in result.output and f"{fleet.revoked_serial}: " in result.output
    assert "was revoked" in result.output
    assert network_attempts == []


def test_the_socket_block_is_real(fleet: Fleet, tmp_path: Path, network_attempts: list[str]
                                  ) -> None:
    """Without a bundle, --ocsp-verify goes to the network: the block sees it."""
    cert = tmp_path / "leaf.pem"
    row = next(c for c in fleet.ca.certificates() if c.role == "leaf")
    cert.write_text(row.pem)
    roots, intermediates = tmp_path / "roots.pem", tmp_path / "intermediates.pem"
    by_role = {c.role: c.pem for c in fleet.ca.certificates()}
    roots.write_text(by_role["root"])
    intermediates.write_text(by_role["intermediate"])
    run_cli("verify", "--certificate", cert, "--certificate-intermediates", intermediates,
            "--certificate-roots", roots, "--ocsp-verify", fleet.images["good-a"])
    assert network_attempts


def test_verify_with_bundle_at_a_past_time_and_stale_warning(fleet: Fleet, bundle: Path,
                                                             tmp_path: Path) -> None:
    env = _trust_env(tmp_path)
    manifest = mf.Manifest.decode(_member(bundle, mf.MANIFEST))
    inside = (manifest.created + timedelta(minutes=5)).isoformat()
    ok = run_cli("verify", "--bundle", bundle, "--at", inside, fleet.images["good-a"], env=env)
    assert ok.exit_code == 0, ok.output
    late = (manifest.valid_until + timedelta(hours=1)).isoformat()
    stale = run_cli("verify", "--bundle", bundle, "--at", late, fleet.images["pgp-c"], env=env)
    assert stale.exit_code == 1 and "bundle is STALE" in stale.output
    assert "Container verified" not in stale.output
    allowed = run_cli("verify", "--bundle", bundle, "--at", late, "--allow-stale", "test reason",
                      fleet.images["pgp-c"], env=env)
    assert allowed.exit_code == 0, allowed.output
    assert "WARNING: bundle is STALE" in allowed.output and "test reason" in allowed.output
    unasked = run_cli("verify", "--allow-stale", "x", "--key", bundle, fleet.images["pgp-c"])
    assert unasked.exit_code == 2 and "--allow-stale applies to --bundle only" in unasked.output


def test_verify_with_a_tampered_bundle_is_refused_first(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "b"
    export(fleet.ca, path)
    env = _trust_env(tmp_path)
    assert run_cli("verify", "--bundle", path, fleet.images["good-a"], env=env).exit_code == 0
    (path / lay.PGP_KEYRING).write_bytes(b"swapped")
    result = run_cli("verify", "--bundle", path, fleet.images["pgp-c"], env=env)
    assert result.exit_code == 1
    assert "keys/pgp-keyring.asc does not match its manifest digest" in result.output
    assert "Container verified" not in result.output


def _member(bundle: Path, name: str) -> bytes:
    from lifecycle.bundles.archive import read_bundle

    return read_bundle(bundle)[name]


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("openssl"), *map(str, args)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_openssl_accepts_the_chains_with_the_bundle_crls(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "b"
    export(fleet.ca, path)
    crls = sorted((path / lay.CRLS).iterdir())
    assert len(crls) == 2
    crl_args = [a for c in crls for a in ("-CRLfile", c)]
    leaves = sorted((path / lay.LEAVES).iterdir())
    assert len(leaves) == 3
    for leaf in leaves:
        done = _openssl("verify", "-CAfile", path / lay.ROOTS, "-untrusted",
                        path / lay.INTERMEDIATES, "-crl_check_all", *crl_args, leaf)
        if leaf.stem == fleet.revoked_serial:
            assert done.returncode != 0
            assert "certificate revoked" in done.stdout + done.stderr
        else:
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.strip().endswith(": OK")


def test_openssl_accepts_the_presigned_ocsp_responses(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "b"
    export(fleet.ca, path)
    for leaf in sorted((path / lay.LEAVES).iterdir()):
        done = _openssl("ocsp", "-respin", path / lay.OCSP / f"{leaf.stem}.der", "-issuer",
                        path / lay.INTERMEDIATES, "-cert", leaf, "-CAfile", path / lay.ROOTS,
                        "-no_nonce")
        assert "Response verify OK" in done.stderr + done.stdout, done.stderr
        status = "revoked" if leaf.stem == fleet.revoked_serial else "good"
        assert f"{leaf}: {status}" in done.stdout


def test_the_presigned_responses_pass_the_stock_ocsp_rules(
        fleet: Fleet, tmp_path: Path, stockocsp: Callable[..., subprocess.CompletedProcess[str]],
        ) -> None:
    """Stock ``--ocsp-verify``'s rules (tests/interop/stockocsp) on the bundle's own answers:
    every leaf and the intermediate pass, the revoked leaf fails; openssl accepts the root's
    answer for the intermediate."""
    path = tmp_path / "b"
    export(fleet.ca, path)
    for leaf in sorted((path / lay.LEAVES).iterdir()):
        done = stockocsp("-leaf", leaf, "-intermediates", path / lay.INTERMEDIATES,
                         "-roots", path / lay.ROOTS, "-responses", path / lay.OCSP)
        if leaf.stem == fleet.revoked_serial:
            assert done.returncode == 1 and "certificate revoked" in done.stdout, done.stdout
        else:
            assert done.returncode == 0, done.stdout
            assert done.stdout.count("ocsp ok:") == 2, done.stdout
    inter = fleet.ca.certificate(INTERMEDIATE)
    (tmp_path / "inter.pem").write_bytes(certificate_pem(inter))
    done = _openssl("ocsp", "-respin", path / lay.OCSP / f"{inter.serial_number:x}.der",
                    "-issuer", path / lay.ROOTS, "-cert", tmp_path / "inter.pem",
                    "-CAfile", path / lay.ROOTS, "-no_nonce")
    assert "Response verify OK" in done.stderr + done.stdout, done.stderr
    assert ": good" in done.stdout
