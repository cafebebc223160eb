"""Strict configuration: hostile values, unknown keys, ranges, rules across sets, identities.

Every bad file gives one ``file: key: reason`` line (a ConfigError, exit 2), never a traceback,
and ``ca init`` checks everything before it creates a single key.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lifecycle.cli import main
from lifecycle.config import (
    MIB,
    KeyAlgorithm,
    Strategy,
    identity_kind,
    load_config,
    parse_listen,
)
from lifecycle.errors import ConfigError, PolicyError
from lifecycle.store import migrate
from lifecycle.store.db import sqlite_url

REPO = Path(__file__).resolve().parents[2]
RESIGN_SET = '[[image_sets]]\nname = "apps"\npaths = ["*.sif"]\nstrategy = "resign"\n'
GITHUB = ("https://github.com/example-org/example-repository/.github/workflows/"
          "release-images.yml@refs/heads/main")


def write(tmp_path: Path, body: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def refused(tmp_path: Path, body: str | bytes, *needles: str,
            kind: type[ConfigError] = ConfigError) -> str:
    path = write(tmp_path, body)
    with pytest.raises(kind) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


# -- hostile values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e20", "100000000000000000000", "1.5", "true", '"365"'])
def test_key_rotation_overflows_and_wrong_types(tmp_path: Path, value: str) -> None:
    refused(tmp_path, f"{RESIGN_SET}key_rotation_days = {value}\n",
            "[[image_sets]][0] (apps).key_rotation_days: must be a whole number of days "
            "from 1 to 36500", kind=PolicyError)


@pytest.mark.parametrize("lease", ["99999999999999d", "9" * 400 + "d", "3651d"])
def test_huge_durations(tmp_path: Path, lease: str) -> None:
    refused(tmp_path, f'[serve]\nlease = "{lease}"\n', "[serve].lease:", "maximum of 3650d")


def test_non_utf8_file(tmp_path: Path) -> None:
    refused(tmp_path, b'[ca]\norganization = "Caf\xe9"\n', "not UTF-8 text", "save the file as UTF-8")


def test_deeply_nested_toml(tmp_path: Path) -> None:
    refused(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply")


@pytest.mark.parametrize("listen", ["[::1", "::1:8080", "[::1]", "[nothost]:80", "a b:80",
                                    "host:99999", "host:８０"])
def test_bad_listen_addresses(tmp_path: Path, listen: str) -> None:
    refused(tmp_path, f'[serve]\nlisten = "{listen}"\n', "[serve].listen:", "is not HOST:PORT")
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        parse_listen(listen)


@pytest.mark.parametrize(("listen", "address"), [("[::1]:8443", ("::1", 8443)),
                                                 (":9000", ("127.0.0.1", 9000)),
                                                 ("ca.example.org:80", ("ca.example.org", 80))])
def test_good_listen_addresses(tmp_path: Path, listen: str, address: tuple[str, int]) -> None:
    config = load_config(write(tmp_path, f'[serve]\nlisten = "{listen}"\n'))
    assert (config.listen_host, config.listen_port) == address
    if ":" in address[0]:
        assert config.ca.urls.ocsp_url == "http://[::1]:8443/ocsp"


@pytest.mark.parametrize("body", [
    "[serve]\nlease = 'x'\n" + "[ca]\n" * 2,
    b"\xff\xfe",
    "x = " + "{a = " * 5000 + "1" + "}" * 5000,
    '[serve]\nlisten = "[::1"\n',
    f"{RESIGN_SET}key_rotation_days = 1e20\n",
])
def test_the_cli_says_one_line_and_exits_2(tmp_path: Path, body: str | bytes) -> None:
    path = write(tmp_path, body)
    result = subprocess.run([sys.executable, "-m", "lifecycle.cli.main", "plan", "--config",
                             str(path)], capture_output=True, text=True, check=False, timeout=60,
                            env={"PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), result.stderr


# -- unknown keys and sections -----------------------------------------------------------------


def test_a_mistyped_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    refused(tmp_path, '[database]\npth = "prod.db"\n',
            "[database].pth: unknown key (did you mean 'path'?)")


def test_an_unknown_key_without_a_near_match_lists_the_known_ones(tmp_path: Path) -> None:
    refused(tmp_path, '[keys]\ncolour = "blue"\n', "[keys].colour: unknown key (known: 'directory')")


def test_a_mistyped_section_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    refused(tmp_path, '[datbase]\npath = "prod.db"\n',
            "[datbase]: unknown section (did you mean [database]?)")


@pytest.mark.parametrize(("body", "needle"), [
    ('[tlog]\norigin = "x.example/log"\nkey_fle = "k"\n',
     "[tlog].key_fle: unknown key (did you mean 'key_file'?)"),
    ('[ca]\ncrl_lifetime = 3\n', "[ca].crl_lifetime: unknown key (did you mean 'crl_lifetime_days'?)"),
    ('[serve]\nmax_connection = 3\n', "did you mean 'max_connections'?"),
])
def test_unknown_keys_in_every_table(tmp_path: Path, body: str, needle: str) -> None:
    refused(tmp_path, body, needle)


def test_a_glob_that_cannot_match_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, RESIGN_SET.replace('"*.sif"', '"[z-a].sif"'),
            "[[image_sets]][0] (apps).paths: '[z-a].sif' is not a glob", kind=PolicyError)


def test_an_unknown_top_level_key(tmp_path: Path) -> None:
    refused(tmp_path, 'databse = "prod.db"\n', "databse: unknown top-level key (did you mean [database]?)")


def test_path_and_url_together_are_ambiguous(tmp_path: Path) -> None:
    refused(tmp_path, '[database]\npath = "a.db"\nurl = "sqlite:///b.db"\n',
            "[database].url: give either path or url, not both")


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "needle"), [
    ("[ca]\ncrl_lifetime_days = -3\n", "[ca].crl_lifetime_days: must be a whole number of days from 1"),
    ("[ca]\nocsp_response_lifetime_hours = 0\n", "[ca].ocsp_response_lifetime_hours: must be"),
    ("[serve]\nworkers = 100000\n", "[serve].workers: must be a whole number from 1 to 1000"),
    ("[serve]\nmax_connections = 0\n", "[serve].max_connections: must be a whole number from 1 to 100000"),
    ("[serve]\nmax_request_bytes = 10\n", "[serve].max_request_bytes: must be a whole number from 1024"),
    ('[serve]\nidle_timeout = "0s"\n', "[serve].idle_timeout: '0s' must be longer than zero"),
    ('[ca]\norganization = "' + "O" * 65 + '"\n', "[ca].organization: is 65 characters long"),
    ('[ca]\npublic_url = "ftp://x"\n', "[ca].public_url: 'ftp://x' is not an http(s) URL"),
    ('[tlog]\norigin = "has space"\n', "[tlog].origin: a log name without spaces"),
    ('[ca]\nocsp_responder = "self"\n', "[ca].ocsp_responder:"),
])
def test_every_number_and_name_has_a_range(tmp_path: Path, body: str, needle: str) -> None:
    refused(tmp_path, body, needle)


@pytest.mark.parametrize(("key", "value"), [("overlap_days", -1), ("distribution_lead_days", -2),
                                            ("certificate_lifetime_days", 36501),
                                            ("crl_lifetime_days", 0)])
def test_set_ranges(tmp_path: Path, key: str, value: int) -> None:
    refused(tmp_path, f"{RESIGN_SET}{key} = {value}\n", f"(apps).{key}: must be a whole number",
            kind=PolicyError)


# -- the CRL lifetime in force -----------------------------------------------------------------


CI_SET = ('[[image_sets]]\nname = "ci"\npaths = ["ci/*.sif"]\nstrategy = "ephemeral"\n'
          'identity = "ci@example.org"\n')


def test_sets_without_a_crl_lifetime_take_the_ca_one(tmp_path: Path) -> None:
    """Before: the ephemeral set's default 7 days silently won over [ca] 14 days."""
    config = load_config(write(tmp_path, "[ca]\ncrl_lifetime_days = 14\n"
                               f"{RESIGN_SET}distribution_lead_days = 5\n{CI_SET}"))
    assert config.ca.crl_lifetime == timedelta(days=14)
    assert config.policies.crl_lifetime == timedelta(days=14)
    assert {p.crl_lifetime for p in config.policies.image_sets} == {timedelta(days=14)}


def test_the_shortest_set_lifetime_is_checked_against_every_set(tmp_path: Path) -> None:
    message = refused(tmp_path, "[ca]\ncrl_lifetime_days = 14\n"
                      f"{RESIGN_SET}distribution_lead_days = 5\n{CI_SET}crl_lifetime_days = 7\n",
                      "[[image_sets]][0] (apps).crl_lifetime_days: the CRL lifetime in force is 7 days "
                      "(from [[image_sets]][1] (ci).crl_lifetime_days)", kind=PolicyError)
    assert "more than twice distribution_lead_days (5)" in message


def test_the_effective_lifetime_is_the_ca_one_too(tmp_path: Path) -> None:
    """``ca init`` and ``apply`` publish CRLs of the same lifetime."""
    config = load_config(write(tmp_path, f"[ca]\ncrl_lifetime_days = 7\n{RESIGN_SET}"
                               "crl_lifetime_days = 30\n"))
    assert config.ca.crl_lifetime == config.policies.crl_lifetime == timedelta(days=30)


def test_without_sets_the_ca_lifetime_applies(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[ca]\ncrl_lifetime_days = 3\n")).ca.crl_lifetime \
        == timedelta(days=3)


# -- identities --------------------------------------------------------------------------------


@pytest.mark.parametrize(("identity", "kind"), [
    (GITHUB, "uri"), ("https://gitlab.example.org/" + "group/" * 60 + "project", "uri"),
    ("spiffe://example.org/ns/ci/sa/builder", "uri"), ("builder@example.org", "email"),
    ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "uri"),
])
def test_realistic_identities_are_accepted(tmp_path: Path, identity: str, kind: str) -> None:
    assert len(GITHUB) > 64
    assert identity_kind(identity) == kind
    [policy] = load_config(write(tmp_path, CI_SET.replace("ci@example.org", identity))
                           ).policies.image_sets
    assert policy.identity == identity and policy.strategy is Strategy.EPHEMERAL


@pytest.mark.parametrize(("identity", "reason"), [
    ("https://ci.example.org/a b", "without spaces or control characters"),
    ("https://ci.example.org/\\u0007", "control characters"),
    ("https://ci.example.org/\\u00e9", "printable ASCII"),
    ("ci.example.org/pipelines", "neither an email address nor a URI"),
    ("https://" + "x" * 5000, "more than 4096"),
])
def test_bad_identities_are_refused_at_load(tmp_path: Path, identity: str, reason: str) -> None:
    refused(tmp_path, CI_SET.replace("ci@example.org", identity),
            "[[image_sets]][0] (ci).identity:", reason, kind=PolicyError)


# -- settings other parts read -----------------------------------------------------------------


def test_new_serve_and_tlog_settings(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, '[tlog]\norigin = "x.example/log"\n'))
    assert (defaults.serve.max_connections, defaults.serve.idle_timeout,
            defaults.serve.max_request_bytes) == (100, timedelta(seconds=30), MIB)
    assert defaults.tlog is not None and defaults.tlog.append_token_file is None
    config = load_config(write(tmp_path, '[serve]\nmax_connections = 500\nidle_timeout = "5s"\n'
                               'max_request_bytes = 65536\n[tlog]\norigin = "x.example/log"\n'
                               'append_token_file = "secrets/append.token"\n'))
    assert (config.serve.max_connections, config.serve.idle_timeout,
            config.serve.max_request_bytes) == (500, timedelta(seconds=5), 65536)
    assert config.tlog is not None
    assert config.tlog.append_token_file == tmp_path / "secrets" / "append.token"


def test_values_are_typed(tmp_path: Path) -> None:
    [policy] = load_config(write(tmp_path, RESIGN_SET + 'key_algorithm = "ed25519"\n')
                           ).policies.image_sets
    assert policy.strategy is Strategy.RESIGN and policy.key_algorithm is KeyAlgorithm.ED25519


def test_the_config_layer_imports_no_higher_layer() -> None:
    code = ("import sys, lifecycle.config, lifecycle.reports\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('lifecycle.service', "
            "'lifecycle.strategies.policy', 'lifecycle.cli')))\n"
            "print(','.join(bad))\n")
    # the package's own public API (lifecycle/__init__.py) is loaded first and not counted
    isolated = ("import sys, lifecycle\nbefore = set(sys.modules)\nimport lifecycle.config\n"
                "print(','.join(sorted(m for m in set(sys.modules) - before "
                "if m.startswith('lifecycle.') and m not in ('lifecycle.config', 'lifecycle.errors', "
                "'lifecycle.files', 'lifecycle.inventory', 'lifecycle.globs'))))\n")
    for source in (code, isolated):
        result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                                check=True, timeout=60, env={"PYTHONPATH": str(REPO)})
        assert result.stdout.strip() == "", result.stdout


# -- ca init checks before it creates ----------------------------------------------------------


@pytest.fixture
def ca_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = write(tmp_path, '[database]\npath = "db.sqlite"\n[keys]\ndirectory = "keys"\n')
    monkeypatch.setenv("SIF_LIFECYCLE_CONFIG", str(config))
    monkeypatch.setenv("SIF_LIFECYCLE_PASSPHRASE", "a long passphrase")
    migrate.upgrade(sqlite_url(tmp_path / "db.sqlite"))
    return config


def _ca(*args: str) -> Result:
    return CliRunner().invoke(main.cli, ["ca", *args], catch_exceptions=False)


def _nothing_created(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert not keys.exists() or not any(keys.iterdir())


@pytest.mark.parametrize("args", [("--root-days", "100", "--intermediate-days", "200"),
                                  ("--name", "n" * 50)])
def test_ca_init_checks_before_creating(ca_cli: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = _ca("init", *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    _nothing_created(tmp_path)
    retry = _ca("init", "--root-days", "200", "--intermediate-days", "100")
    assert retry.exit_code == 0, retry.output


def test_ca_init_refuses_a_bad_ca_table_before_creating(ca_cli: Path, tmp_path: Path) -> None:
    ca_cli.write_text(ca_cli.read_text() + "[ca]\ncrl_lifetime_days = -3\n")
    result = _ca("init")
    assert result.exit_code == 2 and "[ca].crl_lifetime_days" in result.stderr
    _nothing_created(tmp_path)
    ca_cli.write_text(ca_cli.read_text().replace("-3", "3"))
    assert _ca("init").exit_code == 0


def test_the_ocsp_responder_mode_is_read(tmp_path: Path) -> None:
    from lifecycle.config import OcspResponderMode, load_config

    assert load_config(write(tmp_path, "")).ca.ocsp_responder is OcspResponderMode.ISSUER
    chosen = load_config(write(tmp_path, '[ca]\nocsp_responder = "delegated"\n'))
    assert chosen.ca.ocsp_responder is OcspResponderMode.DELEGATED
