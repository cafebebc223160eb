"""One mapping from exceptions to exit statuses, and one line on stderr for each, bugs included."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lifecycle.cli.failure import DEBUG_ENV, exit_code
from lifecycle.cli.main import EXIT_CODES, ExitCode, LifecycleGroup
from lifecycle.errors import (
    BundleVerificationError,
    CertificateValidationError,
    KeyMaterialError,
    LifecycleError,
    LogForkError,
    LogProofError,
    SifFormatError,
    StoreError,
    TamperedImageError,
    VerificationError,
)
from tests.conftest import REPO


def _cause(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(("exc", "code"), [
    (VerificationError("no"), ExitCode.CHECK_FAILED),
    (CertificateValidationError("expired"), ExitCode.CHECK_FAILED),
    (BundleVerificationError("stale"), ExitCode.CHECK_FAILED),
    (TamperedImageError("changed"), ExitCode.CHECK_FAILED),
    (LogProofError("bad proof"), ExitCode.CHECK_FAILED),
    (LogForkError("fork"), ExitCode.CHECK_FAILED),
    (StoreError("down"), ExitCode.BAD_INPUT),
    (KeyMaterialError("bad key"), ExitCode.BAD_INPUT),
    (SifFormatError("bad magic"), ExitCode.BAD_INPUT),
    (click.UsageError("no such option"), ExitCode.BAD_INPUT),
    (click.BadParameter("bad value"), ExitCode.BAD_INPUT),
    (click.FileError("x.pem"), ExitCode.BAD_INPUT),
    (click.ClickException("demo finished with failures"), ExitCode.CHECK_FAILED),
    (_cause(click.Abort(), KeyboardInterrupt()), ExitCode.INTERRUPTED),
    (_cause(click.Abort(), EOFError()), ExitCode.BAD_INPUT),
    (OSError(98, "Address already in use"), ExitCode.BAD_INPUT),
    (PermissionError(13, "Permission denied", "/srv/out"), ExitCode.BAD_INPUT),
    (OSError("no errno: raised by our own code"), ExitCode.BUG),
    (ValueError("oops"), ExitCode.BUG),
    (KeyError("k"), ExitCode.BUG),
])
def test_exit_code(exc: BaseException, code: ExitCode) -> None:
    assert exit_code(exc) is code
    if isinstance(exc, LifecycleError):  # the same status for Python callers of the API
        assert exc.exit_code is code


def test_every_exit_status_is_documented() -> None:
    assert list(EXIT_CODES) == sorted(ExitCode)
    assert all(f"| {int(code)} | {meaning} |" in (REPO / "docs" / "cli.md").read_text()
               for code, meaning in EXIT_CODES.items())


def _group(error: BaseException) -> click.Group:
    group = LifecycleGroup("sif-lifecycle")

    @group.command()
    def boom() -> None:
        raise error

    @group.command()
    @click.pass_context
    def quit_with(ctx: click.Context) -> None:
        ctx.exit(1)

    return group


def test_expected_error_is_one_line() -> None:
    result = CliRunner().invoke(_group(StoreError("down", path="db.sqlite", hint="start it")), ["boom"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "Error: db.sqlite: down (start it)\n"


def test_a_wrapped_multi_line_message_is_still_one_line() -> None:
    error = KeyMaterialError("unreadable certificate: ASN.1 parse error\n  at offset 4\n", path="c.pem")
    result = CliRunner().invoke(_group(error), ["boom"])
    assert result.stderr == "Error: c.pem: unreadable certificate: ASN.1 parse error at offset 4\n"


def test_the_system_refusing_is_bad_environment_not_a_bug() -> None:
    result = CliRunner().invoke(_group(PermissionError(13, "Permission denied", "/srv/out")), ["boom"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: /srv/out: Permission denied (the system refused; fix that and run again)"]


def test_bug_is_one_line_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    result = CliRunner().invoke(_group(ZeroDivisionError("division by zero\nmore")), ["boom"])
    assert result.exit_code == ExitCode.BUG == 70
    assert result.stderr.splitlines() == [
        "Error: internal error, a bug in sif-lifecycle: ZeroDivisionError: division by zero "
        f"(run again with {DEBUG_ENV}=1 for the traceback and report it)"]
    assert "Traceback" not in result.output


def test_bug_with_debug_shows_the_traceback() -> None:
    result = CliRunner().invoke(_group(ZeroDivisionError("division by zero")), ["boom"],
                                env={DEBUG_ENV: "1"})
    assert result.exit_code == ExitCode.BUG
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert ", in boom\n" in result.stderr  # the frame that raised (not its source: no linecache)
    assert result.stderr.splitlines()[-1] == ("Error: internal error, a bug in sif-lifecycle: "
                                              "ZeroDivisionError: division by zero (report it)")


def test_exit_status_of_ctx_exit_help_and_usage_errors() -> None:
    group = _group(ValueError())
    assert CliRunner().invoke(group, ["quit-with"]).exit_code == 1
    assert CliRunner().invoke(group, ["--help"]).exit_code == 0
    usage = CliRunner().invoke(group, ["boom", "--nope"])
    assert usage.exit_code == 2 and "No such option '--nope'" in usage.stderr


def test_ctrl_c_exits_130() -> None:
    result = CliRunner().invoke(_group(KeyboardInterrupt()), ["boom"])
    assert (result.exit_code, result.stderr.strip()) == (130, "Aborted!")  # click starts a new line


@pytest.fixture
def image(golden_images: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(golden_images / "two-groups.sif", tmp_path / "image.sif"))


def test_unsupported_curve_names_the_file_and_the_supported_keys(image: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    private, public = tmp_path / "k1.pem", tmp_path / "k1.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    before = image.read_bytes()
    from lifecycle.cli.main import cli

    supported = "use RSA, ECDSA on P-256, P-384 or P-521, or Ed25519"
    for command, path in ("sign", private), ("verify", public):
        result = CliRunner().invoke(cli, [command, "--key", str(path), str(image)])
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"Error: {path}: unsupported key: ECDSA on curve secp256k1; {supported}"]
    assert image.read_bytes() == before
