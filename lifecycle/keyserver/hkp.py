"""An HKP client (draft-shaw-openpgp-hkp): ``/pks/add``, ``op=get`` by fingerprint, ``op=index``.

Keyservers are not trusted. Every answer is bounded (:data:`MAX_ANSWER` bytes, one deadline for
the whole exchange), and a key fetched by fingerprint is handed back only when its primary key
has exactly that fingerprint and every signature it carries from itself (user ID
certifications, subkey bindings, revocations) verifies: a keyserver can withhold a key, but it
cannot substitute another one or forge a newer expiry. Anything else is one
:class:`~lifecycle.errors.KeyserverError` line naming the keyserver.

``hkp://host`` means ``http://host:11371`` and ``hkps://host`` means ``https://host`` (the
ports GnuPG uses). A keyserver that does not answer is retried ``retries`` times, waiting
``backoff`` and then twice as long each time; a refusal (an HTTP 4xx) is not retried.
"""

from __future__ import annotations

import base64
import binascii
import enum
import http.client
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes

from lifecycle.config import KeyserverSettings
from lifecycle.errors import KeyMaterialError, KeyserverError, KeyserverUnavailableError
from lifecycle.integrity.pgp import armored_key_blocks, load_keys, quiet
from lifecycle.integrity.pgp import fingerprint as key_fingerprint

MAX_ANSWER = 4 * 1024 * 1024
"""Largest answer read: real keys with their signatures are kilobytes; flooded ones are refused."""
MAX_KEY_PACKETS = 2000
"""Packets (key, user IDs, signatures) in one served key block: pgpy needs about a millisecond
per signature, so a certificate-flooded key (tens of thousands) is refused before parsing."""
MAX_INDEX_ENTRIES = 1000
HKP_PORT = 11371
_FINGERPRINT = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{40})")
_CHUNK = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A keyserver answers itself: a redirect (perhaps to another scheme) is a refusal."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class IndexFlag(enum.StrEnum):
    """The ``flags`` field of a machine-readable index line (draft-shaw 5.2)."""

    REVOKED = "r"
    DISABLED = "d"
    EXPIRED = "e"


def normalize_fingerprint(text: str) -> str:
    """A v4 fingerprint as 40 upper-case hex digits; spaces and a ``0x`` prefix are accepted."""
    match = _FINGERPRINT.fullmatch(text.replace(" ", "").replace(":", ""))
    if match is None:
        raise KeyserverError(f"{text!r} is not an OpenPGP fingerprint",
                             hint="give all 40 hex digits, as 'sif-lifecycle key list' shows")
    return match.group(1).upper()


def base_url(url: str) -> str:
    """The http(s) base of a keyserver URL (``hkp://`` and ``hkps://`` mapped as GnuPG does)."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"hkp": "http", "hkps": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise KeyserverError(f"keyserver URL {url!r} is not hkp(s) or http(s)",
                             hint="e.g. hkps://keys.example.org or http://127.0.0.1:11371")
    netloc = parts.netloc
    if parts.scheme == "hkp" and parts.port is None:
        netloc = f"{netloc}:{HKP_PORT}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class IndexUid:
    user_id: str
    created: datetime | None = None
    expires: datetime | None = None
    flags: frozenset[IndexFlag] = frozenset()


@dataclass(frozen=True)
class IndexEntry:
    """One ``pub`` line of a machine-readable index and its ``uid`` lines."""

    key_id: str
    """A fingerprint or key ID as the keyserver gives it, upper-case hex."""
    algorithm: int | None = None
    bits: int | None = None
    created: datetime | None = None
    expires: datetime | None = None
    flags: frozenset[IndexFlag] = frozenset()
    uids: tuple[IndexUid, ...] = ()

    @property
    def revoked(self) -> bool:
        return IndexFlag.REVOKED in self.flags


def _time(field: str) -> datetime | None:
    if not field:
        return None
    if not field.isdigit() or len(field) > 12:
        raise ValueError(f"time {field[:20]!r} is not seconds since 1970")
    return datetime.fromtimestamp(int(field), UTC)


def _number(field: str) -> int | None:
    if not field:
        return None
    if not field.isdigit() or len(field) > 6:
        raise ValueError(f"{field[:20]!r} is not a number")
    return int(field)


def _flags(field: str) -> frozenset[IndexFlag]:
    return frozenset(IndexFlag(c) for c in field if c in {f.value for f in IndexFlag})


def _printable(text: str) -> str:
    """A user ID as a keyserver sent it, minus control characters (no terminal escapes)."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:1024])


def parse_index(text: str) -> list[IndexEntry]:
    """The entries of a machine-readable index (``op=index&options=mr``); ValueError if garbled.

    Unknown line types are skipped, as the draft says; fields missing at the end count as empty.
    """
    entries: list[IndexEntry] = []
    uids: list[IndexUid] = []
    pending: IndexEntry | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        kind, _, rest = line.partition(":")
        fields = rest.split(":")
        try:
            if kind == "pub":
                if pending is not None:
                    entries.append(_with_uids(pending, uids))
                    uids = []
                key_id, algorithm, bits, created, expires, flags = (fields + [""] * 6)[:6]
                if not re.fullmatch(r"[0-9A-Fa-f]{8,64}", key_id):
                    raise ValueError(f"key ID {key_id[:80]!r} is not hex")
                pending = IndexEntry(key_id.upper(), _number(algorithm), _number(bits),
                                     _time(created), _time(expires), _flags(flags))
                if len(entries) >= MAX_INDEX_ENTRIES:
                    raise ValueError(f"more than {MAX_INDEX_ENTRIES} keys")
            elif kind == "uid":
                if pending is None:
                    raise ValueError("a uid line before any pub line")
                escaped, created, expires, flags = (fields + [""] * 4)[:4]
                uids.append(IndexUid(_printable(urllib.parse.unquote(escaped, errors="replace")),
                                     _time(created), _time(expires), _flags(flags)))
                if len(uids) > MAX_INDEX_ENTRIES:
                    raise ValueError(f"more than {MAX_INDEX_ENTRIES} user IDs on one key")
            elif kind == "info":
                version = fields[0]
                if version != "1":
                    raise ValueError(f"index version {version[:20]!r} is not 1")
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    if pending is not None:
        entries.append(_with_uids(pending, uids))
    return entries


def _with_uids(entry: IndexEntry, uids: list[IndexUid]) -> IndexEntry:
    return IndexEntry(entry.key_id, entry.algorithm, entry.bits, entry.created, entry.expires,
                      entry.flags, tuple(uids))


def _packet_count(block: str) -> int:
    """How many OpenPGP packets an armored block holds, read from the packet headers only
    (RFC 4880 4.2); counting stops at anything it cannot frame, which pgpy then rejects."""
    lines = block.splitlines()
    try:
        body_start = lines.index("", 1) + 1
    except ValueError:
        body_start = 1
    text = "".join(line for line in lines[body_start:-1] if not line.startswith("="))
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return 0
    count, pos = 0, 0
    while pos < len(data) and data[pos] & 0x80:
        header = data[pos]
        if header & 0x40:  # new format
            first = data[pos + 1] if pos + 1 < len(data) else 255
            if first < 192:
                size, skip = first, 2
            elif first < 224 and pos + 2 < len(data):
                size, skip = ((first - 192) << 8) + data[pos + 2] + 192, 3
            elif first == 255 and pos + 5 < len(data):
                size, skip = int.from_bytes(data[pos + 2:pos + 6], "big"), 6
            else:
                break
        else:
            kind = header & 3
            if kind == 3:
                break
            width = 1 << kind
            size, skip = int.from_bytes(data[pos + 1:pos + 1 + width], "big"), 1 + width
        count += 1
        pos += skip + size
    return count


def checked_key(answer: bytes, fingerprint: str, source: str) -> Any:
    """The key with primary ``fingerprint`` in ``answer``, its own signatures all verified.

    Other keys in the answer are ignored; none with that fingerprint, or a self-signature that
    does not verify, is a KeyserverError.
    """
    text = answer.decode("utf-8", "replace")
    blocks = armored_key_blocks(text)
    if len(blocks) > MAX_INDEX_ENTRIES or sum(map(_packet_count, blocks)) > MAX_KEY_PACKETS:
        raise KeyserverError(f"answered 0x{fingerprint} with more than {MAX_KEY_PACKETS} packets "
                             "(a flooded key?); refused", path=source)
    try:
        keys = load_keys(text, source)
    except KeyMaterialError as exc:
        raise KeyserverError(f"answered 0x{fingerprint} with no readable key: {exc.message}",
                             path=source) from None
    match = [k for k in keys if key_fingerprint(k) == fingerprint]
    if not match:
        served = ", ".join(key_fingerprint(k) for k in keys[:3])
        raise KeyserverError(f"answered 0x{fingerprint} with a different key ({served}); "
                             "not trusted", path=source)
    key = match[0]
    if not key.is_public:
        raise KeyserverError(f"answered 0x{fingerprint} with a secret key; not used", path=source)
    try:
        with quiet():
            good = _self_signatures_verify(key)
    except Exception as exc:  # pgpy raises many types for unusable keys
        raise KeyserverError(f"key 0x{fingerprint}: its self-signatures cannot be checked: {exc}",
                             path=source) from None
    if not good:
        raise KeyserverError(f"key 0x{fingerprint}: a self-signature does not verify; not trusted",
                             path=source)
    return key


def _self_signatures_verify(key: Any) -> bool:
    """Every signature the primary key made on itself, its user IDs and subkeys verifies.

    pgpy's ``verify`` also refuses keys that have expired *now*; an expired key is still the
    genuine key (``verify --at`` judges expiry at a time), so the cryptographic check is done
    here without that rule. A key with no self-signature at all is refused too.
    """
    keyid = key.fingerprint.keyid
    pairs = [(sig, key) for sig in key.__sig__ if sig.signer == keyid]
    for subject in [*key.userids, *key.userattributes, *key.subkeys.values()]:
        pairs += [(sig, subject) for sig in subject.__sig__ if sig.signer == keyid]
    if not any(subject is not key for _, subject in pairs):
        return False
    for sig, subject in pairs:
        digest = getattr(hashes, sig.hash_algorithm.name, None)
        if digest is None:
            return False
        if key._key.verify(sig.hashdata(subject), sig.__sig__, digest()) is not True:
            return False
    return True


class HkpClient:
    """One keyserver. ``sleep`` is injectable so tests of the backoff need not wait."""

    def __init__(self, url: str, *, timeout: timedelta = timedelta(seconds=10), retries: int = 2,
                 backoff: timedelta = timedelta(seconds=1),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.base = base_url(url)
        self.timeout = timeout.total_seconds()
        self.retries = retries
        self.backoff = backoff.total_seconds()
        self.sleep = sleep

    @classmethod
    def from_settings(cls, url: str, settings: KeyserverSettings) -> HkpClient:
        return cls(url, timeout=settings.timeout, retries=settings.retries,
                   backoff=settings.backoff)

    def _once(self, request: urllib.request.Request) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        try:
            with _OPENER.open(request, timeout=self.timeout) as answer:
                status = int(answer.status)
                body = bytearray()
                while chunk := answer.read(_CHUNK):
                    body += chunk
                    if len(body) > MAX_ANSWER:
                        raise KeyserverError(f"answered with more than {MAX_ANSWER} bytes; "
                                             "refused", path=self.url)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no complete answer within {self.timeout:g}s")
                return status, bytes(body)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(4096)

    def _call(self, path: str, query: dict[str, str] | None = None,
              form: dict[str, str] | None = None) -> tuple[int, bytes]:
        url = f"{self.base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data else {}
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers,  # noqa: S310
                                             method="POST" if data is not None else "GET")
            try:
                status, body = self._once(request)
                if status < 500 or attempt >= self.retries:  # a 5xx is retried, then reported
                    return status, body
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                problem = str(getattr(exc, "reason", exc))
                if attempt >= self.retries:
                    tries = f" ({attempt + 1} attempts)" if attempt else ""
                    raise KeyserverUnavailableError(f"did not answer{tries}: {problem}",
                                                    path=self.url,
                                         hint="check [keyserver] urls and that it runs") from None
            self.sleep(self.backoff * 2**attempt)
            attempt += 1

    @staticmethod
    def _detail(body: bytes) -> str:
        text = re.sub(r"<[^>]*>", " ", body[:2048].decode("utf-8", "replace"))
        return " ".join(text.split())[:200]

    def add(self, armored: bytes) -> None:
        """Publish an armored public key (``POST /pks/add keytext=...``)."""
        if b"PRIVATE KEY BLOCK" in armored:
            raise KeyserverError("refusing to publish a private key", path=self.url)
        status, body = self._call("/pks/add", form={"keytext": armored.decode("ascii", "replace")})
        if status != 200:
            raise KeyserverError(f"refused the key: HTTP {status} {self._detail(body)}".rstrip(),
                                 path=self.url)

    def get(self, fingerprint: str) -> Any:
        """The key with this fingerprint (a pgpy key), checked by :func:`checked_key`.

        None when the keyserver has no such key (HTTP 404).
        """
        fpr = normalize_fingerprint(fingerprint)
        status, body = self._call("/pks/lookup",
                                  {"op": "get", "options": "mr", "search": f"0x{fpr}"})
        if status == 404:
            return None
        if status != 200:
            raise KeyserverError(f"refused to look up 0x{fpr}: HTTP {status} "
                                 f"{self._detail(body)}".rstrip(), path=self.url)
        return checked_key(body, fpr, self.url)

    def search(self, text: str) -> list[IndexEntry]:
        """The keys whose user IDs or IDs match ``text`` (``op=index&options=mr``)."""
        if not text.strip() or not text.isprintable():
            raise KeyserverError("the search text is empty or has control characters")
        status, body = self._call("/pks/lookup",
                                  {"op": "index", "options": "mr", "search": text})
        if status == 404:
            return []
        if status != 200:
            raise KeyserverError(f"refused the search: HTTP {status} {self._detail(body)}".rstrip(),
                                 path=self.url)
        try:
            return parse_index(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeyserverError(f"answered the search with a garbled index: {exc}",
                                 path=self.url) from None
