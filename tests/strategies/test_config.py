"""[[image_sets]] in the TOML config: parsed into pure values; bad values name file and key."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from lifecycle.config import load_config
from lifecycle.errors import PolicyError
from lifecycle.pki.keys import KeyAlgorithm

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "sif-lifecycle.example.toml"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_the_documented_example_parses() -> None:
    policies = load_config(EXAMPLE).policies
    base, apps = policies.image_sets
    assert (base.name, base.strategy, base.renewal) == ("base-images", "reissue", Fraction(2, 3))
    assert base.paths == (str(REPO / "config/images/base/**/*.sif"),)
    assert base.publish_directory == REPO / "config/publish/base"
    assert apps.key_algorithm is KeyAlgorithm.ED25519
    assert apps.distribution_lead == timedelta(days=14) and apps.overlap == timedelta(days=30)
    assert policies.set_for(str(REPO / "config/images/apps/x.sif")) == apps
    assert policies.set_for(str(REPO / "config/images/base/a/b.sif")) == base
    assert policies.set_for("/elsewhere/x.sif") is None


def test_defaults_and_absolute_lead(tmp_path: Path) -> None:
    path = write(tmp_path, '[[image_sets]]\nname="x"\npaths="/srv/*.sif"\nstrategy="reissue"\n'
                 'renew_before_days=20\n')
    [policy] = load_config(path).policies.image_sets
    assert policy.certificate_lifetime == timedelta(days=90)
    assert policy.renew_before == timedelta(days=20) and policy.paths == ("/srv/*.sif",)


@pytest.mark.parametrize(("body", "key", "reason"), [
    ('name="x"\npaths=["a"]\nstrategy="rotate"', "[[image_sets]][0] (x).strategy", "must be one of"),
    ('name="x"\npaths=[]\nstrategy="resign"', "[[image_sets]][0] (x).paths", "list of path globs"),
    ('paths=["a"]\nstrategy="resign"', "[[image_sets]][0].name", "required"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\nrenewal="3/2"', "(x).renewal", "between 0 and 1"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\nrenewal="soon"', "(x).renewal", "fraction"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\ncertificate_lifetime_days=0',
     "(x).certificate_lifetime_days", "from 1 to 36500, not 0"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\nrenewal="1/2"\nrenew_before_days=3',
     "(x).renew_before_days", "not both"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\noverlap_days=400', "(x).overlap_days",
     "shorter than key_rotation_days"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\ndistribution_lead_days=5',
     "(x).crl_lifetime_days", "twice distribution_lead_days"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\nkey_algorithm="dsa"', "(x).key_algorithm",
     "must be one of"),
    ('name="x"\npaths=["a"]\nstrategy="resign"\nrotation_days=3', "[[image_sets]][0] (x).rotation_days",
     "unknown key (did you mean 'key_rotation_days'?)"),
])
def test_invalid_policies_name_file_key_and_reason(tmp_path: Path, body: str, key: str,
                                                   reason: str) -> None:
    path = write(tmp_path, "[[image_sets]]\n" + body + "\n")
    with pytest.raises(PolicyError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and key in message and reason in message
    assert "\n" not in message


def test_duplicate_names_and_cli_exit_code(tmp_path: Path) -> None:
    one = '[[image_sets]]\nname="x"\npaths=["a"]\nstrategy="resign"\n'
    path = write(tmp_path, one + one)
    result = subprocess.run([sys.executable, "-m", "lifecycle.cli.main", "--log-level", "error",
                             "plan", "--config", str(path)], capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO)}, check=False, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {path}: [[image_sets]]: name 'x' is used twice"
