"""ecl.toml from the PGP image sets: the layout SingularityCE/Apptainer read, never a list that
refuses everything, PEM sets named in a comment only."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.bundles.ecl import (
    EclMode,
    ExecGroup,
    SetKeys,
    check_ecl,
    render_ecl,
    set_directory,
)
from lifecycle.config import KeyType, load_config
from lifecycle.errors import BundleError, ConfigError
from lifecycle.inventory.fleet import link_key
from lifecycle.model.key_state import KeyState
from lifecycle.pki.pgp import PgpAlgorithm
from lifecycle.store import migrate
from lifecycle.store.db import make_engine
from lifecycle.store.key_service import KeyService
from tests.bundles.conftest import run_cli

NOW = datetime(2027, 3, 1, tzinfo=UTC)
FPR = [c * 40 for c in "ABCDEF"]
CONFIG = """
[database]
path = "store.db"
[keys]
directory = "keys"
[[image_sets]]
name = "extended"
paths = ["/srv/extended/*.sif"]
strategy = "reissue"
key_type = "pgp"
[[image_sets]]
name = "rotated"
paths = ["/srv/rotated/**/*.sif"]
strategy = "resign"
key_type = "pgp"
key_algorithm = "rsa4096"
[[image_sets]]
name = "certs"
paths = ["/srv/certs/*.sif"]
strategy = "reissue"
"""


def test_set_directory_only_for_one_literal_directory() -> None:
    assert set_directory(["/srv/a/*.sif", "/srv/a/x-?.sif"]) == "/srv/a"
    assert set_directory(["/srv/a/*.sif", "/srv/b/*.sif"]) == ""
    assert set_directory(["/srv/**/x.sif"]) == ""
    assert set_directory(["/srv/a*/x.sif"]) == ""


def test_groups_per_directory_and_pem_in_a_comment() -> None:
    sets = [SetKeys("a", KeyType.PGP, "/srv/a", (FPR[0], FPR[1])),
            SetKeys("b", KeyType.PGP, "", (FPR[2],)),
            SetKeys("c", KeyType.PGP, "/srv/a", (FPR[3],)),
            SetKeys("certs", KeyType.PEM, "/srv/certs", ()),
            SetKeys("new", KeyType.PGP, "/srv/new", ())]
    text = render_ecl(sets)
    doc = tomllib.loads(text)
    assert doc["activated"] is True and doc["legacyinsecure"] is False
    assert check_ecl(text, source="t") == [
        ExecGroup("sif-lifecycle-b", EclMode.WHITELIST, "", (FPR[2],)),
        ExecGroup("sif-lifecycle-a-c", EclMode.WHITELIST, "/srv/a", (FPR[0], FPR[1], FPR[3]))]
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "certs sign with PEM keys" in comments and "PGP fingerprints only" in comments
    assert "without a current key yet: new" in comments
    assert "/srv/new" not in text.replace("#", "")  # no group that would admit nothing


def test_no_fingerprint_means_not_activated() -> None:
    text = render_ecl([SetKeys("certs", KeyType.PEM, "", ()), SetKeys("p", KeyType.PGP, "", ())])
    assert tomllib.loads(text) == {"activated": False, "legacyinsecure": False}
    assert check_ecl(text, source="t") == []


@pytest.mark.parametrize(("text", "reason"), [
    ("activated = true\n", "every image would be refused"),
    ('activated = true\n[[execgroup]]\ntagname = "t"\nmode = "whitelist"\ndirpath = ""\n'
     "keyfp = []\n", "admits no key"),
    ('[[execgroup]]\nmode = "graylist"\nkeyfp = []\n', "mode must be one of"),
    (f'[[execgroup]]\nmode = "whitelist"\ndirpath = "rel"\nkeyfp = ["{FPR[0]}"]\n', "absolute"),
    (f'[[execgroup]]\nmode = "whitelist"\ndirpath = "/d"\nkeyfp = ["{FPR[0]}"]\n'
     f'[[execgroup]]\nmode = "whitelist"\ndirpath = "/d"\nkeyfp = ["{FPR[1]}"]\n', "two groups"),
    ('[[execgroup]]\nmode = "whitelist"\nkeyfp = ["1234"]\n', "40-hex-digit"),
    ("activated = 1\n", "true or false"),
    ("nonsense = true\n", "unknown key"),
    ("activated = \n", "not valid TOML"),
])
def test_check_refuses_what_the_runtime_would_not_accept(text: str, reason: str) -> None:
    with pytest.raises(BundleError, match=reason):
        check_ecl(text, source="ecl.toml")


def test_command_prints_current_fingerprints_of_each_pgp_set(tmp_path: Path) -> None:
    config_path = tmp_path / "lifecycle.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    migrate.upgrade(config.database_url)
    service = KeyService(make_engine(config.database_url), config.key_directory)
    made = {}
    for name, state in [("extended", KeyState.ACTIVE), ("rotated", KeyState.ACTIVE),
                        ("rotated", KeyState.RETIRING), ("rotated", KeyState.RETIRED)]:
        row = service.generate_pgp(PgpAlgorithm.ED25519, f"{name} <{name}@example.org>",
                                   b"passphrase", now=NOW)
        link_key(service.engine, name, row.id or 0, NOW)
        service.transition(row.fingerprint, KeyState.ACTIVE, "test", at=NOW)
        if state is not KeyState.ACTIVE:
            service.transition(row.fingerprint, KeyState.RETIRING, "test", at=NOW + timedelta(1))
        if state is KeyState.RETIRED:
            service.transition(row.fingerprint, KeyState.RETIRED, "test", at=NOW + timedelta(2))
        made.setdefault(name, []).append((row.fingerprint.upper(), state))
    result = run_cli("ecl", "--config", config_path)
    assert result.exit_code == 0, result.output
    groups = {g.tagname: g for g in check_ecl(result.output, source="stdout")}
    assert groups["sif-lifecycle-extended"].dirpath == "/srv/extended"
    assert groups["sif-lifecycle-extended"].keyfp == (made["extended"][0][0],)
    assert groups["sif-lifecycle-rotated"].dirpath == ""  # ** spans directories
    assert set(groups["sif-lifecycle-rotated"].keyfp) == {
        f for f, state in made["rotated"] if state is not KeyState.RETIRED}
    assert "certs sign with PEM keys" in result.output


def test_pgp_set_config_rules(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    policies = load_config(path).policies
    extended, rotated, certs = policies.image_sets
    assert (extended.key_type, extended.key_algorithm.value) == (KeyType.PGP, "ed25519")
    assert (rotated.key_type, rotated.key_algorithm.value) == (KeyType.PGP, "rsa4096")
    assert certs.key_type is KeyType.PEM and certs.key_algorithm.value == "p256"
    assert extended.user_id == "sif-lifecycle extended signing <extended@sif-lifecycle.invalid>"
    for extra, reason in [('key_algorithm = "p256"', "PGP keys are rsa4096 or ed25519"),
                          ('key_algorithm = "rsa3072"', "PGP keys are rsa4096 or ed25519")]:
        path.write_text(CONFIG.replace('key_type = "pgp"\n', f'key_type = "pgp"\n{extra}\n', 1))
        with pytest.raises(ConfigError, match=reason):
            load_config(path)
    path.write_text(CONFIG + 'pgp_user_id = "X <x@y>"\n')
    with pytest.raises(ConfigError, match="only applies to key_type"):
        load_config(path)
