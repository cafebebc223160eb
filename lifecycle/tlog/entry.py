"""Log entries and their canonical leaf encoding.

A leaf is the UTF-8 bytes of a canonical JSON object: keys sorted, no whitespace, ASCII only,
bytes as standard padded base64, and exactly these members (version 1)::

    {"certificate":"<base64 DER or PEM bytes>",
     "image_id":"<the image's id, e.g. its SIF UUID>",
     "integrated_time":"YYYY-MM-DDTHH:MM:SSZ",      UTC, whole seconds, set by the log
     "payload_digest":"<algorithm>:<lowercase hex>", digest of the signed payload (DSSE PAE)
     "signature":"<base64 signature bytes>",
     "type":"sif-lifecycle/tlog-entry",
     "version":1}

Decoding re-encodes and demands the same bytes, so every entry has exactly one leaf and one leaf
hash: two logs (or a log and a verifier years later) can never disagree about what was logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifecycle.errors import LogError

ENTRY_TYPE = "sif-lifecycle/tlog-entry"
ENTRY_VERSION = 1
MAX_IMAGE_ID = 1024
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DIGEST = re.compile(r"([a-z0-9]+):([0-9a-f]+)")
_FIELDS = {
    "certificate",
    "image_id",
    "integrated_time",
    "payload_digest",
    "signature",
    "type",
    "version",
}


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with whole seconds, the one time spelling in leaves and timestamps."""
    return utc_seconds(when).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    try:
        when = datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise LogError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
    if format_time(when) != text:
        raise LogError(f"time {text!r} is not in canonical form")
    return when


def utc_seconds(when: datetime) -> datetime:
    """``when`` in UTC truncated to whole seconds; naive datetimes are refused."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise LogError("integrated time must be timezone-aware", hint="use datetime.now(UTC)")
    return when.astimezone(UTC).replace(microsecond=0)


def format_digest(algorithm: str, digest: bytes) -> str:
    if DIGEST_SIZES.get(algorithm) != len(digest):
        raise LogError(
            f"payload digest of {len(digest)} bytes is not a {algorithm} digest",
            hint=f"use one of {', '.join(DIGEST_SIZES)}",
        )
    return f"{algorithm}:{digest.hex()}"


def parse_digest(text: str) -> tuple[str, bytes]:
    """``sha256:<hex>`` into (algorithm, digest bytes)."""
    match = _DIGEST.fullmatch(text)
    if not match:
        raise LogError(f"payload digest {text!r} is not <algorithm>:<lowercase hex>")
    algorithm, digest = match[1], bytes.fromhex(match[2]) if len(match[2]) % 2 == 0 else b""
    format_digest(algorithm, digest)
    return algorithm, digest


@dataclass(frozen=True)
class Submission:
    """What a signer asks the log to record; the log adds the integrated time."""

    payload_digest: bytes
    signature: bytes
    certificate: bytes
    image_id: str
    digest_algorithm: str = "sha256"
    payload: bytes | None = field(default=None, compare=False, repr=False)
    """The signed bytes, sent so a remote log can check the signature; never part of the leaf."""

    def __post_init__(self) -> None:
        format_digest(self.digest_algorithm, self.payload_digest)
        if not self.signature:
            raise LogError("the entry has an empty signature")
        if not self.certificate:
            raise LogError("the entry has an empty certificate")
        if not isinstance(self.image_id, str) or not self.image_id:
            raise LogError("the entry has an empty image id")
        if len(self.image_id) > MAX_IMAGE_ID or not self.image_id.isprintable():  # no surrogates
            raise LogError(f"the image id must be at most {MAX_IMAGE_ID} printable characters")

    def payload_digest_text(self) -> str:
        return format_digest(self.digest_algorithm, self.payload_digest)


@dataclass(frozen=True)
class Entry:
    """A logged submission and the time the log integrated it (UTC, whole seconds)."""

    submission: Submission
    integrated_time: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "integrated_time", utc_seconds(self.integrated_time))

    def to_json(self) -> dict[str, Any]:
        sub = self.submission
        return {
            "certificate": base64.b64encode(sub.certificate).decode(),
            "image_id": sub.image_id,
            "integrated_time": format_time(self.integrated_time),
            "payload_digest": sub.payload_digest_text(),
            "signature": base64.b64encode(sub.signature).decode(),
            "type": ENTRY_TYPE,
            "version": ENTRY_VERSION,
        }

    def encode(self) -> bytes:
        """The canonical leaf bytes."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, leaf: bytes) -> Entry:
        """Parse leaf bytes, refusing anything but the canonical encoding of a version-1 entry."""
        try:
            data = json.loads(leaf)
        except (ValueError, UnicodeDecodeError):
            raise LogError("the log entry is not JSON") from None
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise LogError(f"the log entry does not have exactly the fields {sorted(_FIELDS)}")
        if data["type"] != ENTRY_TYPE or data["version"] != ENTRY_VERSION:
            raise LogError(
                f"unsupported log entry {data['type']!r} version {data['version']!r}",
                hint="upgrade sif-lifecycle",
            )
        try:
            algorithm, digest = parse_digest(str(data["payload_digest"]))
            submission = Submission(
                digest,
                base64.b64decode(data["signature"], validate=True),
                base64.b64decode(data["certificate"], validate=True),
                data["image_id"],
                algorithm,
            )
            entry = cls(submission, parse_time(str(data["integrated_time"])))
        except (binascii.Error, TypeError, ValueError):
            raise LogError("the log entry has a malformed field") from None
        if entry.encode() != leaf:
            raise LogError("the log entry is not in canonical form")
        return entry


def digest_payload(payload: bytes, algorithm: str = "sha256") -> bytes:
    """Convenience for signers: the digest of the signed bytes in a supported algorithm."""
    if algorithm not in DIGEST_SIZES:
        raise LogError(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm, payload).digest()
