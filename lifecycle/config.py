"""The configuration: one pydantic model of the TOML file, and the plain values the code reads.

``load_config`` validates the whole file against :class:`ConfigFile` (every key known, every
number in range, rules across keys and across image sets) before anything runs, then resolves
it into :class:`Config`: relative paths against the file's directory, derived CA URLs, the
effective CRL lifetime. The first problem becomes one line naming the file, the key and the
reason (``config.toml: [[image_sets]][2] (apps).key_rotation_days: ...``).

This module sits at the bottom layer beside ``errors``: it imports no store, service or
strategy code, so every layer can read the configuration without an import cycle.

It is longer than our ~400-line rule on purpose: the tables, their ranges and the rules across
them are one reference (docs/config.md mirrors it key by key), and split modules would each
need the others' types to check a cross-table rule.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lifecycle.errors import ConfigError, PolicyError
from lifecycle.files import DOCUMENT_LIMIT, read_file
from lifecycle.globs import compile_glob

ENV_CONFIG = "SIF_LIFECYCLE_CONFIG"
DEFAULT_WORK_SOURCE = "lifecycle.service.planner_source:planner_source"
DEFAULT_RENEWAL = Fraction(2, 3)
MAX_DAYS = 36500
"""A hundred years: longer lifetimes are typos, and bigger numbers overflow dates."""
MAX_DURATION = timedelta(days=3650)
MIB = 1024 * 1024


class Strategy(enum.StrEnum):
    """How an image set stays verifiable (docs/strategies/)."""

    REISSUE = "reissue"
    RESIGN = "resign"
    EPHEMERAL = "ephemeral"


class KeyAlgorithm(enum.StrEnum):
    """The PEM key types the reference signers accept (spec 5.3)."""

    RSA3072 = "rsa3072"
    RSA4096 = "rsa4096"
    P256 = "p256"
    P384 = "p384"
    ED25519 = "ed25519"


EPHEMERAL_ALGORITHMS = (KeyAlgorithm.P256, KeyAlgorithm.ED25519)


class KeyType(enum.StrEnum):
    """What an image set signs with: PEM keys (DSSE envelopes) or OpenPGP keys (clear-sign)."""

    PEM = "pem"
    PGP = "pgp"


PGP_ALGORITHMS = (KeyAlgorithm.RSA4096, KeyAlgorithm.ED25519)
"""The OpenPGP key types a PGP image set generates (``key_algorithm``; default ed25519)."""


class OcspResponderMode(enum.StrEnum):
    """Who signs the OCSP responses for the intermediate's certificates (docs/pki.md)."""

    ISSUER = "issuer"
    """The issuing CA's own key, no certificate embedded: what stock singularity/apptainer
    ``verify --ocsp-verify`` accepts."""
    DELEGATED = "delegated"
    """A delegated responder (EKU OCSPSigning, ocsp-nocheck): RFC 6960 clients (openssl) accept
    it, stock singularity/apptainer reject it."""


class IdentityKind(enum.StrEnum):
    """What a signer identity names in a certificate's SAN: an rfc822Name or a URI."""

    EMAIL = "email"
    URI = "uri"


MAX_IDENTITY = 4096
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PRINTABLE_ASCII = re.compile(r"[!-~]+")


def identity_kind(identity: str) -> IdentityKind:
    """Classify a signer identity; ValueError (the reason) when it is neither kind.

    Checked when the config loads, not at signing: a bad identity found by the service at
    3 a.m. would leave images unsigned. Workflow URIs are long, so only absurd lengths fail.
    """
    if not _PRINTABLE_ASCII.fullmatch(identity):
        raise ValueError(f"identity {identity[:80]!r} is neither an email address nor a URI: "
                         "it must be printable ASCII without spaces or control characters")
    if len(identity) > MAX_IDENTITY:
        raise ValueError(f"identity is {len(identity)} characters long, more than {MAX_IDENTITY}")
    if _URI.fullmatch(identity):
        return IdentityKind.URI
    if _EMAIL.fullmatch(identity):
        return IdentityKind.EMAIL
    raise ValueError(f"identity {identity!r} is neither an email address nor a URI "
                     "(e.g. builder@example.org or https://ci.example.org/pipelines/42)")


# -- durations and addresses -------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_EXAMPLES = '(e.g. "90s", "15m", "1h", "7d")'


def _duration(value: Any) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"``, ``"250ms"``: positive and at most 10 years."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a duration string {_EXAMPLES}, not {_shown(value)}")
    text = value.replace(" ", "")
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration {_EXAMPLES}")
    seconds = math.fsum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{_shown(value)} is longer than the maximum of {MAX_DURATION.days}d")
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return timedelta(seconds=seconds)


def parse_duration(text: str, *, path: Path | str = "duration", key: str = "duration") -> timedelta:
    """A duration given outside the config file (a CLI option); ConfigError naming ``key``."""
    try:
        return _duration(text)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}", path=path) from None


_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*")


def _listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (loopback); ValueError otherwise."""
    bad = ValueError(f"listen address {text!r} is not HOST:PORT (e.g. \"127.0.0.1:8080\" or "
                     "\"[::1]:8080\")")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) < 65536:
        raise bad
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise bad
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad from None
    elif host and (len(host) > 253 or not _HOSTNAME.fullmatch(host)):
        raise bad
    return host or "127.0.0.1", int(port)


def parse_listen(text: str, *, path: Path | str = "listen") -> tuple[str, int]:
    """A listen address given outside the config file (``serve --listen``)."""
    try:
        return _listen(text)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path) from None


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# -- the values the code reads -----------------------------------------------------------------


@dataclass(frozen=True)
class CaUrls:
    """Where relying parties fetch revocation data and issuer certificates (from the config)."""

    crl_url: str | None = None
    root_crl_url: str | None = None
    ocsp_url: str | None = None
    ca_issuers_url: str | None = None


@dataclass(frozen=True)
class CaSettings:
    """The CA's names, URLs and lifetimes; refuses non-positive lifetimes on construction, so a
    CA is never half-created with settings that fail at its first CRL."""

    urls: CaUrls = field(default_factory=CaUrls)
    organization: str | None = None
    crl_lifetime: timedelta = timedelta(days=7)
    ocsp_response_lifetime: timedelta = timedelta(hours=12)
    ocsp_signer_lifetime: timedelta = timedelta(days=90)
    ocsp_responder: OcspResponderMode = OcspResponderMode.ISSUER

    def __post_init__(self) -> None:
        for name in ("crl_lifetime", "ocsp_response_lifetime", "ocsp_signer_lifetime"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"[ca] {name} must be longer than zero, not {getattr(self, name)}")


@dataclass(frozen=True)
class TlogSettings:
    """``[tlog]``: the transparency log kept in the store's own database.

    Ephemeral image sets sign through it; the ``tlog`` commands use it as their default log.
    ``url`` (a log served by another instance's ``serve``) makes signing go over HTTP instead.
    """

    database_url: str
    origin: str
    key_file: Path
    url: str | None = None
    append_token_file: Path | None = None
    """A file holding the bearer token that authorises appends over HTTP (none: disabled)."""


@dataclass(frozen=True)
class KeyserverSettings:
    """``[keyserver]``: the HKP keyservers PGP keys are published to and fetched from."""

    urls: tuple[str, ...] = ()
    timeout: timedelta = timedelta(seconds=10)
    """Longest wait for one whole answer (connect, send, read)."""
    retries: int = 2
    """Extra attempts after a keyserver did not answer (not after a refusal)."""
    backoff: timedelta = timedelta(seconds=1)
    """Wait before the first retry; doubled before each next one."""


@dataclass(frozen=True)
class ImageSetPolicy:
    name: str
    paths: tuple[str, ...]
    strategy: Strategy
    key_algorithm: KeyAlgorithm = KeyAlgorithm.P256
    certificate_lifetime: timedelta = timedelta(days=90)
    renewal: Fraction = DEFAULT_RENEWAL
    """Renew once this fraction of a certificate's lifetime has passed (cert-manager: 2/3)."""
    renew_before: timedelta | None = None
    """Or: renew this long before expiry (wins over ``renewal`` when set)."""
    key_rotation: timedelta = timedelta(days=365)
    overlap: timedelta = timedelta(days=30)
    crl_lifetime: timedelta = timedelta(days=7)
    """Loaded from a file: the CA's effective CRL lifetime (one CRL per issuer serves all sets)."""
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
    key_type: KeyType = KeyType.PEM
    """PGP sets: ``certificate_lifetime`` is how long each key expiry (or extension) lasts."""
    pgp_user_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))

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

    @property
    def user_id(self) -> str:
        """The OpenPGP user ID of a PGP set's keys."""
        return self.pgp_user_id or f"{self.subject_name} <{self.name}@sif-lifecycle.invalid>"


_POLICY_DEFAULTS = ImageSetPolicy("defaults", (), Strategy.RESIGN)


@dataclass(frozen=True)
class Policies:
    image_sets: tuple[ImageSetPolicy, ...] = ()
    _by_name: Mapping[str, ImageSetPolicy] = field(default_factory=dict, compare=False,
                                                   repr=False)

    _matcher: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    keyservers: KeyserverSettings = field(default_factory=KeyserverSettings)
    """``[keyserver]``: where the sets' PGP keys are published (plan and apply read it here)."""

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


# -- the file: one pydantic model per table ----------------------------------------------------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(low: int, high: int, unit: str = "") -> Any:
    """An int field in ``low..high``; refuses bools, floats (``1e20``) and strings."""
    of = f" of {unit}" if unit else ""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number{of} from {low} to {high}, not {_shown(value)}")
        return value
    return BeforeValidator(check)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, not {_shown(value)}")
    if not value.isprintable():
        raise ValueError(f"must not contain control characters, not {_shown(value)}")
    return value


def _url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _PRINTABLE_ASCII.fullmatch(text):
        raise ValueError(f"{_shown(value)} is not an http(s) URL (e.g. \"https://pki.example.org\")")
    return text


def _x509_text(value: Any) -> str:
    """A certificate name attribute: X.509 allows 1 to 64 characters."""
    text = _text(value)
    if len(text) > 64:
        raise ValueError(f"is {len(text)} characters long; certificate names hold at most 64")
    return text


Days = Annotated[int, _whole(1, MAX_DAYS, "days")]
LeadDays = Annotated[int, _whole(0, MAX_DAYS, "days")]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Text = Annotated[str, BeforeValidator(_text)]
Url = Annotated[str, BeforeValidator(_url)]
X509Text = Annotated[str, BeforeValidator(_x509_text)]


def _rule(key: str, reason: str) -> PydanticCustomError:
    """A rule across keys, reported at ``key`` (dotted, relative to the table)."""
    return PydanticCustomError("config_rule", "{reason}", {"key": key, "reason": reason})


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)


class DatabaseTable(_Table):
    path: Text = "lifecycle.db"
    url: Text | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DatabaseTable:
        if self.url is not None and "path" in self.model_fields_set:
            raise _rule("url", "give either path or url, not both")
        return self


class KeysTable(_Table):
    directory: Text = "keys"


class CaTable(_Table):
    organization: X509Text | None = None
    public_url: Url | None = None
    crl_url: Url | None = None
    root_crl_url: Url | None = None
    ocsp_url: Url | None = None
    ca_issuers_url: Url | None = None
    crl_lifetime_days: Annotated[int, _whole(1, 3650, "days")] = 7
    ocsp_response_lifetime_hours: Annotated[int, _whole(1, 8760, "hours")] = 12
    ocsp_responder: OcspResponderMode = OcspResponderMode.ISSUER


def _module_attribute(value: Any) -> str:
    text = _text(value)
    if ":" not in text:
        raise ValueError(f"{text!r} is not MODULE:ATTRIBUTE")
    return text


def _listen_text(value: Any) -> str:
    _listen(_text(value))
    return str(value)


class ServeSettings(_Table):
    """The ``[serve]`` table: how often each job runs and how work is shared (see docs/serve.md)."""

    listen: Annotated[str, BeforeValidator(_listen_text)] = "127.0.0.1:8080"
    scan_interval: Duration = timedelta(minutes=15)
    full_scan_interval: Duration = timedelta(hours=24)
    plan_interval: Duration = timedelta(hours=1)
    crl_interval: Duration = timedelta(hours=1)
    workers: Annotated[int, _whole(1, 1000)] = 1
    lease: Duration = timedelta(minutes=5)
    poll_interval: Duration = timedelta(seconds=10)
    max_attempts: Annotated[int, _whole(1, 1000)] = 5
    shutdown_timeout: Duration = timedelta(seconds=30)
    work_source: Annotated[str, BeforeValidator(_module_attribute)] = DEFAULT_WORK_SOURCE
    publish_interval: Duration = timedelta(hours=1)
    report_directory: Path | None = None
    """Where the publish job writes report.html/.md/.json (off when unset)."""
    bundle_outbox: Path | None = None
    """Where the publish job exports verification bundles when their content changed (off when unset)."""
    bundle_keep: Annotated[int, _whole(1, 1000)] = 5
    max_connections: Annotated[int, _whole(1, 100_000)] = 100
    """HTTP connections served at once; more wait for the listen backlog."""
    idle_timeout: Duration = timedelta(seconds=30)
    """An HTTP connection that sends nothing this long is closed."""
    max_request_bytes: Annotated[int, _whole(1024, 1024 * MIB)] = MIB
    """Largest HTTP request body accepted (413 beyond)."""

    @field_validator("report_directory", "bundle_outbox", mode="before")
    @classmethod
    def _relative_to_file(cls, value: Any, info: ValidationInfo) -> Path:
        return _resolve(_text(value), info)

    @model_validator(mode="after")
    def _lease_renewable(self) -> ServeSettings:
        if self.lease < timedelta(seconds=2):
            raise _rule("lease", "must be at least 2s (workers renew it every third of it)")
        return self

    @property
    def address(self) -> tuple[str, int]:
        return _listen(self.listen)


def _resolve(text: str, info: ValidationInfo) -> Path:
    base = info.context.get("base") if isinstance(info.context, dict) else None
    return Path(base) / text if base is not None else Path(text)


def _origin(value: Any) -> str:
    if not isinstance(value, str) or not value or not _PRINTABLE_ASCII.fullmatch(value):
        raise ValueError("a log name without spaces (e.g. \"example.org/sif-lifecycle/log\"), "
                         f"not {_shown(value)}")
    return value


class TlogTable(_Table):
    origin: Annotated[str, BeforeValidator(_origin)]
    key_file: Text = "tlog-key.json"
    url: Url | None = None
    append_token_file: Text | None = None


class TimestampTable(_Table):
    """``[timestamp]``: RFC 3161 TSAs asked for a token over every signature the strategies make
    (``required`` of them must answer), and the local TSA that ``serve`` answers at ``/tsa``."""

    urls: tuple[Url, ...] = ()
    required: Annotated[int, _whole(1, 8)] = 1
    timeout: Duration = timedelta(seconds=10)
    accuracy: Duration = timedelta(seconds=1)
    """The accuracy the local TSA states in its tokens."""

    @model_validator(mode="after")
    def _enough_urls(self) -> TimestampTable:
        if self.urls and self.required > len(self.urls):
            raise _rule("required", f"{self.required} tokens cannot come from {len(self.urls)} "
                        "URL(s); list more urls or lower required")
        return self


def _keyserver_url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "hkp", "hkps") or not parts.netloc \
            or not _PRINTABLE_ASCII.fullmatch(text) or parts.query or parts.fragment:
        raise ValueError(f"{_shown(value)} is not a keyserver URL (e.g. \"hkps://keys.example.org\" "
                         "or \"http://127.0.0.1:11371\")")
    return text


class KeyserverTable(_Table):
    """``[keyserver]``: where PGP keys are published (``/pks/add``) and fetched (``/pks/lookup``)."""

    urls: list[Annotated[str, BeforeValidator(_keyserver_url)]] = []
    timeout: Duration = timedelta(seconds=10)
    retries: Annotated[int, _whole(0, 10)] = 2
    backoff: Duration = timedelta(seconds=1)

    def settings(self) -> KeyserverSettings:
        return KeyserverSettings(tuple(self.urls), self.timeout, self.retries, self.backoff)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _set_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"letters, digits, '.', '_' or '-' (at most 100), not {_shown(value)}")
    return value


def _globs(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(p, str) and p and p.isprintable() for p in items):
        raise ValueError("required: a list of path globs")
    for pattern in items:
        try:
            compile_glob(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a glob: {exc}") from None
    return tuple(items)


def _fraction(value: Any) -> Fraction:
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        fraction = Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise ValueError(f"must be a fraction like \"2/3\", not {_shown(value)}") from None
    if not 0 < fraction < 1:
        raise ValueError(f"must be between 0 and 1 (exclusive), not {fraction}")
    return fraction


def _identity(value: Any) -> str:
    identity = _text(value)
    identity_kind(identity)
    return identity


_EPHEMERAL_ONLY = ("identity", "certificate_lifetime_minutes")


class ImageSetTable(_Table):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: Annotated[str, BeforeValidator(_set_name)]
    paths: Annotated[tuple[str, ...], BeforeValidator(_globs)]
    strategy: Strategy
    key_algorithm: KeyAlgorithm = KeyAlgorithm.P256
    key_type: KeyType = KeyType.PEM
    pgp_user_id: Text | None = None
    certificate_lifetime_days: Days = _POLICY_DEFAULTS.certificate_lifetime.days
    renewal: Annotated[Fraction, BeforeValidator(_fraction)] | None = None
    renew_before_days: Days | None = None
    key_rotation_days: Days = _POLICY_DEFAULTS.key_rotation.days
    overlap_days: LeadDays = _POLICY_DEFAULTS.overlap.days
    crl_lifetime_days: Annotated[int, _whole(1, 3650, "days")] | None = None
    """Unset: the [ca] value."""
    distribution_lead_days: LeadDays = 0
    publish_directory: Text | None = None
    signing_key: Text | None = None
    common_name: X509Text | None = None
    identity: Annotated[str, BeforeValidator(_identity)] | None = None
    certificate_lifetime_minutes: Annotated[int, _whole(1, 1440, "minutes")] = 10

    @model_validator(mode="after")
    def _rules(self) -> ImageSetTable:
        lifetime = self.certificate_lifetime_days
        if self.renewal is not None and self.renew_before_days is not None:
            raise _rule("renew_before_days", "give either renewal or renew_before_days, not both")
        if self.renew_before_days is not None and self.renew_before_days >= lifetime:
            raise _rule("renew_before_days", "must be shorter than the certificate lifetime")
        if self.distribution_lead_days >= lifetime:
            raise _rule("distribution_lead_days", "must be shorter than the certificate lifetime, "
                        "or no certificate could ever be published in time")
        if self.strategy is Strategy.RESIGN and self.overlap_days >= self.key_rotation_days:
            raise _rule("overlap_days", "must be shorter than key_rotation_days")
        if self.key_type is KeyType.PGP:
            self._pgp_rules()
        elif "pgp_user_id" in self.model_fields_set:
            raise _rule("pgp_user_id", "only applies to key_type = \"pgp\"")
        if self.strategy is not Strategy.EPHEMERAL:
            for key in _EPHEMERAL_ONLY:
                if key in self.model_fields_set:
                    raise _rule(key, "only applies to strategy = \"ephemeral\"")
            return self
        if self.identity is None:
            raise _rule("identity", "required for ephemeral sets: the email or URI its signing "
                        "certificates name (verifiers pin it with --identity)")
        if self.key_algorithm not in EPHEMERAL_ALGORITHMS:
            raise _rule("key_algorithm", "ephemeral keys are "
                        f"{' or '.join(a.value for a in EPHEMERAL_ALGORITHMS)}, "
                        f"not {self.key_algorithm.value}")
        return self

    def _pgp_rules(self) -> None:
        if self.strategy is Strategy.EPHEMERAL:
            raise _rule("key_type", "ephemeral sets sign with short-lived certificates, not PGP "
                        "keys")
        if self.algorithm not in PGP_ALGORITHMS:
            raise _rule("key_algorithm", "PGP keys are "
                        f"{' or '.join(a.value for a in PGP_ALGORITHMS)}, "
                        f"not {self.key_algorithm.value}")

    @property
    def algorithm(self) -> KeyAlgorithm:
        """``key_algorithm``, whose default for PGP sets is ed25519."""
        if self.key_type is KeyType.PGP and "key_algorithm" not in self.model_fields_set:
            return KeyAlgorithm.ED25519
        return self.key_algorithm

    def policy(self, base: Path, crl_lifetime: timedelta) -> ImageSetPolicy:
        ephemeral = self.strategy is Strategy.EPHEMERAL
        return ImageSetPolicy(
            name=self.name, paths=tuple(str(base / p) for p in self.paths),
            strategy=self.strategy, key_algorithm=self.algorithm,
            certificate_lifetime=timedelta(days=self.certificate_lifetime_days),
            renewal=self.renewal or DEFAULT_RENEWAL,
            renew_before=timedelta(days=self.renew_before_days)
            if self.renew_before_days is not None else None,
            key_rotation=timedelta(days=self.key_rotation_days),
            overlap=timedelta(days=self.overlap_days), crl_lifetime=crl_lifetime,
            distribution_lead=timedelta(days=self.distribution_lead_days),
            publish_directory=base / self.publish_directory if self.publish_directory else None,
            signing_key=self.signing_key, common_name=self.common_name or "",
            identity=self.identity or "",
            ephemeral_lifetime=timedelta(minutes=self.certificate_lifetime_minutes)
            if ephemeral else _POLICY_DEFAULTS.ephemeral_lifetime,
            key_type=self.key_type, pgp_user_id=self.pgp_user_id or "")


class AlertsTable(_Table):
    """``[alerts]``: the thresholds of the shipped alert rules that no other window gives
    (see docs/operations.md; the rest follow the image sets' and jobs' own settings)."""

    forecast_days: Days = 30
    """Alert when an image set's forecast "verifiable until" (with this tool) is this close."""
    ca_expiry_days: Days = 90
    """Alert when a CA certificate (root, intermediate, OCSP, ephemeral CA) expires this soon."""
    job: Text = "sif-lifecycle"
    """The Prometheus scrape job of the serve instances (what the instance-missing rule watches)."""
    pending: Duration = timedelta(minutes=10)
    """How long a condition must hold before its rule fires (Prometheus ``for``)."""


class NotifyTable(_Table):
    """``[notify]``: where the service itself sends alerts, for sites without Prometheus."""

    interval: Duration = timedelta(minutes=5)
    webhooks: list[Url] = []
    """Each gets a JSON POST per new or changed condition."""
    alertmanager_url: Url | None = None
    """An Alertmanager: conditions are POSTed to its /api/v2/alerts."""
    smtp_host: Text | None = None
    smtp_port: Annotated[int, _whole(1, 65535)] = 25
    smtp_starttls: bool = False
    smtp_from: Text | None = None
    smtp_to: list[Text] = []
    max_attempts: Annotated[int, _whole(1, 100)] = 5
    retry_delay: Duration = timedelta(seconds=30)
    """Doubled after each failed attempt."""
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _smtp_complete(self) -> NotifyTable:
        if self.smtp_host is not None and (self.smtp_from is None or not self.smtp_to):
            raise _rule("smtp_host", "e-mail needs smtp_from and smtp_to as well")
        if self.smtp_host is None and (self.smtp_from is not None or self.smtp_to):
            raise _rule("smtp_host", "required when smtp_from or smtp_to is given")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks or self.alertmanager_url or self.smtp_host)


class BundlesTable(_Table):
    """``[bundles]``: what exported verification bundles promise."""

    validity_days: Annotated[int, _whole(1, 365, "days")] = 7
    """A bundle's expiry after its export: long enough to carry media between sites. Unset:
    7, or the CRL lifetime in force if shorter; set: at most the CRL lifetime in force."""

    @property
    def validity(self) -> timedelta:
        return timedelta(days=self.validity_days)


class ConfigFile(_Table):
    """The whole TOML document; ``[tlog]`` and ``[[image_sets]]`` are optional."""

    database: DatabaseTable = DatabaseTable()
    keys: KeysTable = KeysTable()
    ca: CaTable = CaTable()
    serve: ServeSettings = ServeSettings()
    tlog: TlogTable | None = None
    keyserver: KeyserverTable = KeyserverTable()
    timestamp: TimestampTable | None = None
    image_sets: list[ImageSetTable] = []
    bundles: BundlesTable = BundlesTable()
    alerts: AlertsTable = AlertsTable()
    notify: NotifyTable = NotifyTable()

    @model_validator(mode="after")
    def _across_sets(self) -> ConfigFile:
        names = [s.name for s in self.image_sets]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise _rule("image_sets", f"name {duplicate!r} is used twice")
        days, source = self.crl_lifetime()
        for index, image_set in enumerate(self.image_sets):
            lead = image_set.distribution_lead_days
            if lead and days <= 2 * lead:
                raise _rule(f"image_sets.{index}.crl_lifetime_days",
                            f"the CRL lifetime in force is {days} days (from {source}): it must be "
                            f"more than twice distribution_lead_days ({lead}), or published CRLs "
                            "would expire before they arrive")
        if "validity_days" in self.bundles.model_fields_set and self.bundles.validity_days > days:
            raise _rule("bundles.validity_days",
                        f"the CRL lifetime in force is {days} days (from {source}): bundles "
                        f"cannot promise {self.bundles.validity_days} days, their CRLs would "
                        "expire first")
        return self

    def crl_lifetime(self) -> tuple[int, str]:
        """The CA's one CRL lifetime in days, and which key sets it.

        The CA has one CRL per issuer for every set: the shortest ``crl_lifetime_days`` a set
        gives wins; a set that gives none takes ``[ca] crl_lifetime_days``.
        """
        candidates = [(s.crl_lifetime_days or self.ca.crl_lifetime_days,
                       _key(("image_sets", i, "crl_lifetime_days"), s.name)
                       if s.crl_lifetime_days else "[ca].crl_lifetime_days")
                      for i, s in enumerate(self.image_sets)]
        return min(candidates, default=(self.ca.crl_lifetime_days, "[ca].crl_lifetime_days"),
                   key=lambda c: c[0])

    def resolve(self, base: Path) -> Config:
        """The values the code reads: paths made absolute, URLs and lifetimes derived."""
        database_url = self.database.url or sqlite_url(base / self.database.path)
        host, port = self.serve.address
        ca = self.ca
        public = (ca.public_url or f"http://{_url_host(host)}:{port}").rstrip("/")
        crl_lifetime = timedelta(days=self.crl_lifetime()[0])
        settings = CaSettings(
            urls=CaUrls(crl_url=ca.crl_url or f"{public}/crl/intermediate.crl",
                        root_crl_url=ca.root_crl_url or f"{public}/crl/root.crl",
                        ocsp_url=ca.ocsp_url or f"{public}/ocsp",
                        ca_issuers_url=ca.ca_issuers_url or f"{public}/ca/intermediate.crt"),
            organization=ca.organization, crl_lifetime=crl_lifetime,
            ocsp_response_lifetime=timedelta(hours=ca.ocsp_response_lifetime_hours),
            ocsp_responder=ca.ocsp_responder)
        tlog = None
        if self.tlog is not None:
            token = self.tlog.append_token_file
            tlog = TlogSettings(database_url, self.tlog.origin, base / self.tlog.key_file,
                                self.tlog.url, base / token if token else None)
        policies = Policies(tuple(s.policy(base, crl_lifetime) for s in self.image_sets),
                            keyservers=self.keyserver.settings())
        bundles = self.bundles
        if "validity_days" not in bundles.model_fields_set:  # the default, capped by the CRLs
            bundles = BundlesTable(validity_days=min(bundles.validity_days, crl_lifetime.days))
        return Config(database_url, base / self.keys.directory, settings, host, port, policies,
                      self.serve, tlog, self.keyserver.settings(), self.timestamp, bundles,
                      alerts=self.alerts, notify=self.notify)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Config:
    database_url: str
    key_directory: Path
    ca: CaSettings
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    policies: Policies = field(default_factory=Policies)
    serve: ServeSettings = field(default_factory=ServeSettings)
    tlog: TlogSettings | None = None
    keyserver: KeyserverSettings = field(default_factory=KeyserverSettings)
    timestamp: TimestampTable | None = None
    bundles: BundlesTable = field(default_factory=BundlesTable)
    alerts: AlertsTable = field(default_factory=AlertsTable)
    notify: NotifyTable = field(default_factory=NotifyTable)


# -- loading -----------------------------------------------------------------------------------

_TABLES: dict[str, type[BaseModel]] = {
    "database": DatabaseTable, "keys": KeysTable, "ca": CaTable, "serve": ServeSettings,
    "tlog": TlogTable, "keyserver": KeyserverTable, "timestamp": TimestampTable,
    "image_sets": ImageSetTable, "bundles": BundlesTable, "alerts": AlertsTable,
    "notify": NotifyTable}
_REQUIRED = {"name": "required: letters, digits, '.', '_' or '-'",
             "paths": "required: a list of path globs",
             "strategy": f"required: one of {', '.join(Strategy)}",
             "origin": "required, a log name without spaces (e.g. \"example.org/sif-lifecycle/log\")"}


def _key(loc: Sequence[str | int], set_name: str | None = None) -> str:
    """``[serve].lease``, ``[[image_sets]][2] (apps).key_rotation_days``, ``[datbase]``."""
    if not loc:
        return "config"
    head, rest = str(loc[0]), list(loc[1:])
    if head == "image_sets":
        text = "[[image_sets]]"
        if rest and isinstance(rest[0], int):
            text += f"[{rest.pop(0)}]" + (f" ({set_name})" if set_name else "")
    elif head in _TABLES:
        text = f"[{head}]"
    else:
        text = head
    return text + "".join(f".{part}" for part in rest)


def _set_name_at(doc: Mapping[str, Any], loc: Sequence[str | int]) -> str | None:
    if len(loc) < 2 or loc[0] != "image_sets" or not isinstance(loc[1], int):
        return None
    sets = doc.get("image_sets")
    try:
        name = sets[loc[1]].get("name") if isinstance(sets, list) else None
    except (AttributeError, IndexError):
        return None
    return name if isinstance(name, str) and _NAME.fullmatch(name) else None


def _did_you_mean(word: str, known: Sequence[str], brackets: str = "'{}'") -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {brackets.format(close[0])}?"
    return "known: " + ", ".join(brackets.format(k) for k in sorted(known))


def _reason(error: Mapping[str, Any], loc: Sequence[str | int], doc: Mapping[str, Any]) -> str:
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        word = str(loc[-1])
        if len(loc) == 1:
            what = "section" if isinstance(doc.get(word), dict) else "top-level key"
            return f"unknown {what} ({_did_you_mean(word, list(_TABLES), '[{}]')})"
        table = _TABLES.get(str(loc[0]), ConfigFile)
        return f"unknown key ({_did_you_mean(word, list(table.model_fields))})"
    if kind == "missing":
        return _REQUIRED.get(str(loc[-1]), "required")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "config_rule":
        return str(ctx["reason"])
    if kind == "enum":
        return f"must be one of {ctx.get('expected', '')}, not {_shown(given)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    if kind in ("list_type", "tuple_type"):
        return "must be an array of tables ([[image_sets]])" if loc == ("image_sets",) \
            else "must be an array"
    if kind == "string_type":
        return f"must be a string, not {_shown(given)}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, not {_shown(given)}"


def _translate(exc: ValidationError, doc: Mapping[str, Any], path: Path) -> ConfigError:
    """The first pydantic error as one ``file: key: reason`` line."""
    error = exc.errors(include_url=False)[0]
    loc: list[str | int] = list(error["loc"])
    ctx = error.get("ctx") or {}
    if error["type"] == "config_rule":
        loc += [int(p) if p.isdigit() else p for p in str(ctx["key"]).split(".")]
    where = _key(loc, _set_name_at(doc, loc))
    if error["type"] == "extra_forbidden" and len(loc) == 1 and isinstance(doc.get(str(loc[0])), dict):
        where = f"[{loc[0]}]"
    kind = PolicyError if loc and loc[0] == "image_sets" else ConfigError
    return kind(f"{where}: {_reason(error, loc, doc)}", path=path)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = read_file(path, limit=DOCUMENT_LIMIT, what="config", error=ConfigError).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                          path=path, hint="save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from exc
    except RecursionError:
        raise ConfigError("not valid TOML: nested too deeply", path=path) from None


def validate(doc: Mapping[str, Any], path: Path, base: Path) -> ConfigFile:
    """The document as a :class:`ConfigFile`, or the first problem as a ConfigError."""
    try:
        return ConfigFile.model_validate(doc, context={"base": base})
    except ValidationError as exc:
        raise _translate(exc, doc, path) from None
    except RecursionError:
        raise ConfigError("nested too deeply", path=path) from None


def load_config(path: Path | None = None) -> Config:
    """Read ``path`` (or $SIF_LIFECYCLE_CONFIG); no file at all means the defaults."""
    if path is None and os.environ.get(ENV_CONFIG):
        path = Path(os.environ[ENV_CONFIG])
    if path is None:
        base = Path.home() / ".local" / "share" / "sif-lifecycle"
        return validate({}, Path("<defaults>"), base).resolve(base)
    base = path.resolve().parent
    return validate(_read(path), path, base).resolve(base)


__all__ = [
    "DEFAULT_RENEWAL", "DEFAULT_WORK_SOURCE", "ENV_CONFIG", "EPHEMERAL_ALGORITHMS", "AlertsTable",
    "CaSettings", "CaUrls", "Config", "ConfigFile", "IdentityKind", "ImageSetPolicy", "KeyAlgorithm",
    "KeyserverSettings", "NotifyTable", "OcspResponderMode", "Policies", "ServeSettings", "Strategy",
    "TimestampTable", "TlogSettings", "identity_kind", "load_config",
    "parse_duration", "parse_listen", "sqlite_url", "validate",
]
