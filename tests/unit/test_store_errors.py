"""Every command that touches the store fails in one line, exit 2, creating nothing, when the store
is not migrated, the PostgreSQL server is down or the psycopg driver is missing.

The commands come from the click command tree (every command with a ``--config`` option), so a
new command is covered, or this test fails until it is given arguments below.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.store import migrate
from lifecycle.store.db import POSTGRES_EXTRA, make_engine, sqlite_url
from tests.keygen import write_pem_pair

ARGS: dict[str, list[str]] = {
    "actions": [],
    "actions retry": ["--all-failed"],
    "apply": [],
    "bundle export": ["out.tar"],
    "ca certificate": ["root"],
    "ca crl": [],
    "ca init": [],
    "ca issue": ["3f2a9c1e", "--name", "signer"],
    "ca list": [],
    "ca reissue": ["1"],
    "ca reissue-intermediate": [],
    "ca revoke": ["1"],
    "db current": [],
    "db downgrade": [],
    "db upgrade": [],
    "ecl": [],
    "images": [],
    "key export": ["3f2a9c1e"],
    "key generate": [],
    "key import": ["import.pem"],
    "key list": [],
    "key push": ["3f2a9c1e"],
    "key status": [],
    "key transition": ["3f2a9c1e", "retired", "--reason", "test"],
    "plan": [],
    "report": [],
    "scan": ["images"],
    "serve": [],
    "sign": ["--ephemeral", "--identity", "ci@example.org", "images/image.sif"],
    "track": ["images"],
}
"""Arguments that get each command as far as opening the store (relative to the config's directory)."""

LOG_ARGS: dict[str, list[str]] = {
    "tlog add": ["--image-id", "1", "--payload-digest", "sha256:" + "0" * 64, "--signature",
                 "images/image.sif", "--certificate", "images/image.sif"],
    "tlog check": ["images/image.sif"],
    "tlog checkpoint": [],
    "tlog evidence": ["0"],
    "tlog get": ["0"],
    "tlog init": ["--origin", "log.example.org/test"],
    "tlog prove-consistency": ["1"],
    "tlog prove-inclusion": ["0"],
    "tlog verifier-key": [],
}
"""The same for the commands on a transparency log database (``--db``)."""

NO_STORE = {"key pull", "key search", "alerts"}
"""Read only the config (its keyservers, its windows): they never open the store."""
CREATES_THE_STORE = {"db upgrade", "db current"}
"""Work on a store that does not exist yet: upgrade creates it, current reports 'empty'."""
MIGRATES_THE_STORE = {"db upgrade", "db current", "db downgrade"}
"""Work on a store at an older revision: that is what they are for."""

PASSWORD = "s3cret-pw"
"""A password in the URL that must never be printed."""


def store_commands(param: str = "config_path") -> list[str]:
    """Every command of the tree with ``param``: --config opens the store, --db a log database."""
    found: list[str] = []

    def walk(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(command, info_name=path[-1] if path else "sif-lifecycle", parent=parent)
        runs_itself = not isinstance(command, click.Group) or command.invoke_without_command
        if runs_itself and any(p.name == param for p in command.params) and " ".join(path) not in NO_STORE:
            found.append(" ".join(path))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name], ctx)

    walk(cli, [], None)
    return found


def test_every_store_command_has_arguments() -> None:
    commands = store_commands()
    assert set(commands) == set(ARGS), f"give ARGS for {sorted(set(commands) - set(ARGS))}"
    logs = store_commands("db")
    assert set(logs) == set(LOG_ARGS), f"give LOG_ARGS for {sorted(set(logs) - set(LOG_ARGS))}"


def _write_config(directory: Path, database: str) -> Path:
    config = directory / "lifecycle.toml"
    config.write_text(f"[database]\n{database}\n[keys]\ndirectory = \"keys\"\n"
                      "[ca]\norganization = \"Test\"\n")
    return config


def _snapshot(directory: Path) -> dict[str, str]:
    """Every file and directory under ``directory`` with a digest of its content."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file()
            else "dir" for p in sorted(directory.rglob("*"))}


@pytest.fixture
def workspace(tmp_path: Path, golden_images: Path) -> Iterator[Path]:
    """A config directory with an image and a key to import, and nothing else."""
    (tmp_path / "images").mkdir()
    shutil.copy(golden_images / "two-groups.sif", tmp_path / "images" / "image.sif")
    _, public = write_pem_pair(tmp_path, "import", "ecdsa")
    public.unlink()
    cwd = Path.cwd()
    os.chdir(tmp_path)  # relative arguments (out.tar, images/) resolve inside the workspace
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_all(config: Path, commands: list[str], log_db: str = "") -> dict[str, tuple[int, str, str]]:
    runner = CliRunner()
    env = {"SIF_LIFECYCLE_PASSPHRASE": "test-passphrase", "SIF_LIFECYCLE_CONFIG": str(config),
           "SIF_LIFECYCLE_TLOG_DB": log_db}
    results = {}
    for command in commands:
        args = ARGS.get(command) or LOG_ARGS.get(command, [])
        result = runner.invoke(cli, [*command.split(), *args, *(["--db", log_db] if log_db else [])],
                               env=env)
        results[command] = (result.exit_code, result.stdout, result.stderr)
    return results


def _assert_one_line(results: dict[str, tuple[int, str, str]], expected: str) -> None:
    wrong = {command: (code, out, err) for command, (code, out, err) in results.items()
             if (code, out, err.splitlines()) != (2, "", [expected])}
    assert not wrong, f"expected exit 2 and only {expected!r}; got {json.dumps(wrong, indent=1)}"


def test_no_database_file(workspace: Path) -> None:
    config = _write_config(workspace, 'path = "state/lifecycle.db"')
    before = _snapshot(workspace)
    results = _run_all(config, [c for c in store_commands() if c not in CREATES_THE_STORE])
    url = sqlite_url(workspace / "state" / "lifecycle.db")
    _assert_one_line(results, f"Error: {url}: the database does not exist "
                              "(run 'sif-lifecycle db upgrade' to create it)")
    assert _snapshot(workspace) == before


def test_schema_older_than_the_code(workspace: Path) -> None:
    url = sqlite_url(workspace / "lifecycle.db")
    migrate.upgrade(url, "0003")
    config = _write_config(workspace, 'path = "lifecycle.db"')
    before = _snapshot(workspace)
    results = _run_all(config, [c for c in store_commands() if c not in MIGRATES_THE_STORE])
    _assert_one_line(results, f"Error: {url}: the database schema is at 0003, this version needs "
                              f"{migrate.head()} (run 'sif-lifecycle db upgrade' first)")
    assert _snapshot(workspace) == before


def test_schema_newer_than_the_code(workspace: Path) -> None:
    url = sqlite_url(workspace / "lifecycle.db")
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    results = _run_all(_write_config(workspace, 'path = "lifecycle.db"'), ["images"])
    _assert_one_line(results, f"Error: {url}: the database schema is at 9999, this version needs "
                              f"{migrate.head()} (the database is newer than this sif-lifecycle: "
                              "upgrade it)")


def _postgres_config(workspace: Path, port: int) -> tuple[Path, str]:
    config = _write_config(
        workspace, f'url = "postgresql+psycopg://lifecycle:{PASSWORD}@127.0.0.1:{port}/lifecycle"')
    return config, f"postgresql+psycopg://lifecycle:***@127.0.0.1:{port}/lifecycle"


@pytest.mark.parametrize("what", ["store", "log"])
def test_postgresql_not_running(workspace: Path, what: str) -> None:
    port = _free_port()
    config, shown = _postgres_config(workspace, port)
    before = _snapshot(workspace)
    if what == "store":
        results = _run_all(config, store_commands())
    else:
        results = _run_all(config, store_commands("db"), log_db=shown.replace("***", PASSWORD))
    prefix = f"Error: {shown}: cannot connect to the database: "
    suffix = f" (is PostgreSQL running at 127.0.0.1:{port}?)"
    wrong = {c: r for c, r in results.items()
             if r[0] != 2 or r[1] or len(r[2].splitlines()) != 1
             or not (r[2].startswith(prefix) and r[2].rstrip("\n").endswith(suffix))}
    assert not wrong, json.dumps(wrong, indent=1)
    assert not any(PASSWORD in err for _, _, err in results.values())
    assert _snapshot(workspace) == before


BLOCK_PSYCOPG = """
import sys
class _NoPsycopg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoPsycopg())
"""
"""Run first in the subprocess: ``import psycopg`` fails as it does without the [postgres] extra."""


def _without_psycopg(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIF_LIFECYCLE_PASSPHRASE": "test-passphrase"}
    env.pop("SIF_LIFECYCLE_DEBUG", None)
    return subprocess.run([sys.executable, "-c", BLOCK_PSYCOPG + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_psycopg_missing(workspace: Path) -> None:
    config, shown = _postgres_config(workspace, _free_port())
    before = _snapshot(workspace)
    # every command in one interpreter (one start-up instead of one per command)
    script = (f"import json, pathlib, tests.unit.test_store_errors as t\n"
              f"config = pathlib.Path({str(config)!r})\n"
              f"print(json.dumps(t._run_all(config, t.store_commands())\n"
              f"                 | t._run_all(config, t.store_commands('db'), {shown!r})))\n")
    env_path = f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
    done = _without_psycopg(env_path + script, workspace)
    assert done.returncode == 0, done.stderr
    results = {c: tuple(r) for c, r in json.loads(done.stdout).items()}
    assert set(results) == set(ARGS) | set(LOG_ARGS)
    _assert_one_line(results, f"Error: {shown}: the database driver 'psycopg' is not installed "
                              f"({POSTGRES_EXTRA})")
    assert _snapshot(workspace) == before


def test_psycopg_missing_real_process(workspace: Path) -> None:
    """The installed entry point itself: its exit status and all it writes on stderr."""
    config, shown = _postgres_config(workspace, _free_port())
    done = _without_psycopg(
        f"from lifecycle.cli.main import main; main(['images', '--config', {str(config)!r}])", workspace)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"Error: {shown}: the database driver 'psycopg' is not "
                                        f"installed ({POSTGRES_EXTRA})"]
