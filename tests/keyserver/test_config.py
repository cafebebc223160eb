"""``[keyserver]`` in the config: URLs, timeout and backoff, each bad value one line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.config import KeyserverSettings, load_config
from lifecycle.errors import ConfigError


def load(tmp_path: Path, body: str) -> KeyserverSettings:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return load_config(path).keyserver


def test_defaults_have_no_keyserver(tmp_path: Path) -> None:
    assert load(tmp_path, "") == KeyserverSettings()
    assert KeyserverSettings().urls == ()


def test_keyserver_table(tmp_path: Path) -> None:
    settings = load(tmp_path, '[keyserver]\nurls = ["hkps://keys.example.org", '
                              '"http://127.0.0.1:11371"]\ntimeout = "5s"\nretries = 4\n'
                              'backoff = "250ms"\n')
    assert settings == KeyserverSettings(("hkps://keys.example.org", "http://127.0.0.1:11371"),
                                         timedelta(seconds=5), 4, timedelta(milliseconds=250))


@pytest.mark.parametrize(("body", "message"), [
    ('urls = ["ftp://k.example.org"]', "[keyserver].urls.0: 'ftp://k.example.org' is not a keyserver"),
    ('urls = ["hkp://k.example.org/?op=x"]', "is not a keyserver URL"),
    ('urls = "hkp://k.example.org"', "[keyserver].urls: must be an array"),
    ("retries = 11", "[keyserver].retries: must be a whole number from 0 to 10"),
    ('timeout = "0s"', "[keyserver].timeout: '0s' must be longer than zero"),
    ('url = "hkp://k.example.org"', "[keyserver].url: unknown key (did you mean 'urls'?)"),
])
def test_bad_values_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"[keyserver]\n{body}\n")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_simulation_copy_publishes_nothing(tmp_path: Path) -> None:
    """``apply --simulate`` must not push the copy's keys to the real keyservers."""
    from lifecycle import simulation
    from lifecycle.store import migrate

    path = tmp_path / "config.toml"
    path.write_text('[database]\npath = "db.sqlite"\n[keyserver]\nurls = ["hkp://k.example.org"]\n')
    config = load_config(path)
    migrate.upgrade(config.database_url)
    copy = load_config(simulation.create(config, path, tmp_path / "sim"))
    assert config.keyserver.urls and copy.keyserver == KeyserverSettings()
    assert copy.policies.keyservers.urls == ()
