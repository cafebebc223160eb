"""Image-set policies as pure values, parsed from the ``[[image_sets]]`` tables of the config.

Every bad value raises :class:`PolicyError` naming the file, the key (``image_sets[2].renewal``)
and the reason, so an operator fixes the config before the service runs a single action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from lifecycle.errors import LifecycleError, PolicyError
from lifecycle.inventory.globs import compile_glob
from lifecycle.pki.keys import KeyAlgorithm

REISSUE, RESIGN, EPHEMERAL = "reissue", "resign", "ephemeral"
STRATEGIES = (REISSUE, RESIGN, EPHEMERAL)
DEFAULT_RENEWAL = Fraction(2, 3)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_KEYS = {"name", "paths", "strategy", "key_algorithm", "certificate_lifetime_days", "renewal",
         "renew_before_days", "key_rotation_days", "overlap_days", "crl_lifetime_days",
         "distribution_lead_days", "publish_directory", "signing_key", "common_name",
         "identity", "certificate_lifetime_minutes"}
EPHEMERAL_ALGORITHMS = (KeyAlgorithm.P256, KeyAlgorithm.ED25519)


@dataclass(frozen=True)
class ImageSetPolicy:
    name: str
    paths: tuple[str, ...]
    strategy: str
    key_algorithm: KeyAlgorithm = KeyAlgorithm.P256
    certificate_lifetime: timedelta = timedelta(days=90)
    renewal: Fraction = DEFAULT_RENEWAL
    """Renew once this fraction of a certificate's lifetime has passed (cert-manager: 2/3)."""
    renew_before: timedelta | None = None
    """Or: renew this long before expiry (wins over ``renewal`` when set)."""
    key_rotation: timedelta = timedelta(days=365)
    overlap: timedelta = timedelta(days=30)
    crl_lifetime: timedelta = timedelta(days=7)
    distribution_lead: timedelta = timedelta(0)
    """Air-gapped sites: new trust material must be published this long before it is needed."""
    publish_directory: Path | None = None
    signing_key: str | None = None
    """Adopt this existing store key (fingerprint prefix) instead of generating one."""
    common_name: str = ""
    identity: str = ""
    """Ephemeral sets: the signer identity (email or URI) their short-lived certificates name."""
    ephemeral_lifetime: timedelta = timedelta(minutes=10)
    """Ephemeral sets: how long each signing certificate lives."""

    def renewal_opens(self, not_before: datetime, not_after: datetime) -> datetime:
        """When re-issuing a certificate valid ``not_before``..``not_after`` becomes due."""
        if self.renew_before is not None:
            at = not_after - self.renew_before
        else:
            at = not_before + (not_after - not_before) * self.renewal.numerator \
                / self.renewal.denominator
        return min(at, not_after - self.distribution_lead)

    @property
    def subject_name(self) -> str:
        return self.common_name or f"sif-lifecycle {self.name} signing"


@dataclass(frozen=True)
class Policies:
    image_sets: tuple[ImageSetPolicy, ...] = ()
    _by_name: Mapping[str, ImageSetPolicy] = field(default_factory=dict, compare=False,
                                                   repr=False)

    _matcher: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in self.image_sets})
        # One alternation over every glob, in config order: a single regex call per image
        # instead of one per glob (planning 100,000 images matches each against all sets).
        alternatives = [f"(?P<s{i}_{j}>{compile_glob(p).pattern})"
                        for i, policy in enumerate(self.image_sets)
                        for j, p in enumerate(policy.paths)]
        if alternatives:
            object.__setattr__(self, "_matcher", re.compile("|".join(alternatives)))

    def get(self, name: str) -> ImageSetPolicy | None:
        return self._by_name.get(name)

    def scan_roots(self) -> list[str]:
        """Every path glob of every set, in config order: what a periodic scan covers."""
        return [p for s in self.image_sets for p in s.paths]

    def publish_directories(self) -> dict[str, Path | None]:
        """Image set -> publish directory, for ``load_state`` to read what each one holds."""
        return {s.name: s.publish_directory for s in self.image_sets if s.publish_directory}

    @property
    def crl_lifetime(self) -> timedelta | None:
        """The shortest CRL lifetime any set asks for (the CA has one CRL for all of them)."""
        return min((s.crl_lifetime for s in self.image_sets), default=None)

    @property
    def distribution_lead(self) -> timedelta:
        return max((s.distribution_lead for s in self.image_sets), default=timedelta(0))

    def set_for(self, path: str) -> ImageSetPolicy | None:
        """The first image set (in config order) whose globs match ``path``."""
        match = self._matcher.match(path) if self._matcher is not None else None
        if match is None or match.lastgroup is None:
            return None
        return self.image_sets[int(match.lastgroup[1:].split("_")[0])]


# -- parsing ---------------------------------------------------------------------------------


def _err(path: Path, key: str, reason: str) -> PolicyError:
    return PolicyError(f"{key}: {reason}", path=path)


def _days(table: Mapping[str, Any], key: str, default: int | None, where: str, path: Path,
          *, minimum: int = 1) -> timedelta | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _err(path, f"{where}.{key}", f"must be a whole number of days >= {minimum}, "
                   f"not {value!r}")
    return timedelta(days=value)


def _fraction(value: Any, where: str, path: Path) -> Fraction:
    try:
        if isinstance(value, bool):
            raise ValueError
        fraction = Fraction(value) if isinstance(value, int | float) else Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise _err(path, f"{where}.renewal", f"must be a fraction like \"2/3\", not {value!r}"
                   ) from None
    if not 0 < fraction < 1:
        raise _err(path, f"{where}.renewal", f"must be between 0 and 1 (exclusive), not {value}")
    return fraction


def _str(table: Mapping[str, Any], key: str, where: str, path: Path) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _err(path, f"{where}.{key}", f"must be a non-empty string, not {value!r}")
    return value


def parse_image_set(table: Any, index: int, path: Path, base: Path) -> ImageSetPolicy:
    where = f"image_sets[{index}]"
    if not isinstance(table, dict):
        raise _err(path, where, "must be a table ([[image_sets]])")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise _err(path, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_KEYS))})")
    name = _str(table, "name", where, path)
    if name is None or not _NAME.fullmatch(name):
        raise _err(path, f"{where}.name", "required: letters, digits, '.', '_' or '-'")
    where = f"image_sets[{index}] ({name})"
    paths = table.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(
            isinstance(p, str) and p for p in paths):
        raise _err(path, f"{where}.paths", "required: a list of path globs")
    strategy = table.get("strategy")
    if strategy not in STRATEGIES:
        raise _err(path, f"{where}.strategy", f"must be one of {', '.join(STRATEGIES)}, "
                   f"not {strategy!r}")
    algorithm_text = table.get("key_algorithm", KeyAlgorithm.P256.value)
    try:
        algorithm = KeyAlgorithm(algorithm_text)
    except ValueError:
        raise _err(path, f"{where}.key_algorithm", f"must be one of "
                   f"{', '.join(a.value for a in KeyAlgorithm)}, not {algorithm_text!r}") from None
    lifetime = _days(table, "certificate_lifetime_days", 90, where, path)
    renew_before = _days(table, "renew_before_days", None, where, path)
    assert lifetime is not None
    if "renewal" in table and renew_before is not None:
        raise _err(path, f"{where}.renew_before_days", "give either renewal or "
                   "renew_before_days, not both")
    if renew_before is not None and renew_before >= lifetime:
        raise _err(path, f"{where}.renew_before_days", "must be shorter than the certificate "
                   "lifetime")
    lead = _days(table, "distribution_lead_days", 0, where, path, minimum=0)
    assert lead is not None
    if lead >= lifetime:
        raise _err(path, f"{where}.distribution_lead_days", "must be shorter than the "
                   "certificate lifetime, or no certificate could ever be published in time")
    rotation = _days(table, "key_rotation_days", 365, where, path)
    overlap = _days(table, "overlap_days", 30, where, path, minimum=0)
    crl_lifetime = _days(table, "crl_lifetime_days", 7, where, path)
    assert rotation is not None and overlap is not None and crl_lifetime is not None
    if lead and crl_lifetime <= 2 * lead:
        raise _err(path, f"{where}.crl_lifetime_days", "must be more than twice "
                   "distribution_lead_days, or published CRLs would expire before they arrive")
    if strategy == RESIGN and overlap >= rotation:
        raise _err(path, f"{where}.overlap_days", "must be shorter than key_rotation_days")
    publish = _str(table, "publish_directory", where, path)
    identity, ephemeral_lifetime = _ephemeral(table, strategy, algorithm, where, path)
    return ImageSetPolicy(
        name=name, paths=tuple(str(base / p) for p in paths), strategy=strategy,
        key_algorithm=algorithm, certificate_lifetime=lifetime,
        renewal=_fraction(table["renewal"], where, path) if "renewal" in table
        else DEFAULT_RENEWAL,
        renew_before=renew_before, key_rotation=rotation, overlap=overlap,
        crl_lifetime=crl_lifetime, distribution_lead=lead,
        publish_directory=base / publish if publish else None,
        signing_key=_str(table, "signing_key", where, path),
        common_name=_str(table, "common_name", where, path) or "",
        identity=identity, ephemeral_lifetime=ephemeral_lifetime)


def _ephemeral(table: Mapping[str, Any], strategy: str, algorithm: KeyAlgorithm, where: str,
               path: Path) -> tuple[str, timedelta]:
    """The identity and certificate lifetime of an ephemeral set (checked here, not at signing:
    a bad identity found by the service at 3 a.m. would leave images unsigned)."""
    from lifecycle.ephemeral import identity_name

    identity = _str(table, "identity", where, path)
    minutes = table.get("certificate_lifetime_minutes", 10)
    if strategy != EPHEMERAL:
        for key in ("identity", "certificate_lifetime_minutes"):
            if key in table:
                raise _err(path, f"{where}.{key}", "only applies to strategy = \"ephemeral\"")
        return "", timedelta(minutes=10)
    if identity is None:
        raise _err(path, f"{where}.identity", "required for ephemeral sets: the email or URI "
                   "its signing certificates name (verifiers pin it with --identity)")
    try:
        identity_name(identity)
    except LifecycleError as exc:
        raise _err(path, f"{where}.identity", exc.message) from None
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise _err(path, f"{where}.certificate_lifetime_minutes", "must be a whole number of "
                   f"minutes from 1 to 1440, not {minutes!r}")
    if algorithm not in EPHEMERAL_ALGORITHMS:
        raise _err(path, f"{where}.key_algorithm", "ephemeral keys are "
                   f"{' or '.join(a.value for a in EPHEMERAL_ALGORITHMS)}, not {algorithm.value}")
    return identity, timedelta(minutes=minutes)


def parse_policies(tables: Any, path: Path, base: Path) -> Policies:
    if tables is None:
        return Policies()
    if not isinstance(tables, list):
        raise _err(path, "image_sets", "must be an array of tables ([[image_sets]])")
    sets: Sequence[ImageSetPolicy] = [parse_image_set(t, i, path, base)
                                      for i, t in enumerate(tables)]
    names = [s.name for s in sets]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise _err(path, "image_sets", f"name {duplicate!r} is used twice")
    return Policies(tuple(sets))
