"""The bundle manifest and its DSSE envelope: what a bundle holds, and proof of who made it.

Pure: no I/O. The manifest lists every file with its size and SHA-256, so one signature over the
manifest covers the whole bundle; ``version`` grows by one with every export signed by the same
bundle key (rollback protection, as TUF's metadata versions) and ``valid_until`` is its expiry:
the revocation data and log checkpoint inside are made to cover it (freeze protection). The
envelope is DSSE with our own payload type, so it can never be confused with an image signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.errors import BundleVerificationError
from lifecycle.integrity import dsse

FORMAT_VERSION = 2
PAYLOAD_TYPE = "application/vnd.sif-lifecycle.bundle-manifest+json"
MANIFEST = "manifest.json"
ENVELOPE = "manifest.dsse.json"
VOLATILE_PREFIXES = ("ocsp/", "crls/", "README")
"""Files re-made on every export (OCSP responses are re-signed and CRLs re-issued to cover the
validity, the README is dated): not part of the content digest; what the CRLs say is, through
``revoked``."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    path: str
    kind: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class KeyEntry:
    """A signing key in the bundle: where its public material is and which certificates it has."""

    fingerprint: str
    kind: str  # "pem" or "pgp"
    state: str
    file: str
    certificates: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "kind": self.kind, "state": self.state,
                "file": self.file, "certificates": list(self.certificates)}


@dataclass(frozen=True)
class ImageSetEntry:
    """An image set the bundle is for; an ephemeral set's identity is what ``verify --bundle``
    accepts for logged signatures (signed: it is policy, not a hint)."""

    name: str
    strategy: str
    identity: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "identity": self.identity}


@dataclass(frozen=True)
class Manifest:
    created: datetime
    valid_until: datetime
    files: tuple[FileEntry, ...]
    version: int = 1
    """Monotonic per bundle key: a verifier refuses a lower one than it has seen (rollback)."""
    revoked: tuple[str, ...] = ()
    """``<crl path>:<serial>`` of every entry of the bundle's CRLs (part of the content digest)."""
    image_sets: tuple[ImageSetEntry, ...] = ()
    keys: tuple[KeyEntry, ...] = ()
    log_origin: str | None = None
    limits: Mapping[str, str] = field(default_factory=dict)
    """What bounds ``valid_until``: file or limit name -> its time (ISO 8601)."""
    format_version: int = FORMAT_VERSION

    @property
    def file_count(self) -> int:
        """Every file of the bundle on disk: those listed, and the manifest and its envelope."""
        return len(self.files) + 2

    @property
    def identities(self) -> tuple[str, ...]:
        """The signer identities of the ephemeral sets: accepted for logged signatures."""
        return tuple(e.identity for e in self.image_sets if e.identity)

    def content_digest(self) -> str:
        """Digest of what the bundle says, not when it was made: equal digests, same bundle."""
        stable = sorted(f"{f.path}\0{f.sha256}" for f in self.files
                        if not f.path.startswith(VOLATILE_PREFIXES))
        stable += [f"revoked\0{r}" for r in sorted(self.revoked)]
        stable += [f"set\0{e.name}\0{e.strategy}\0{e.identity}" for e in self.image_sets]
        return sha256_hex("\n".join(stable).encode())

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "version": self.version,
            "created": self.created.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "content_digest": self.content_digest(),
            "log_origin": self.log_origin,
            "limits": dict(self.limits),
            "revoked": list(self.revoked),
            "image_sets": [e.to_json() for e in self.image_sets],
            "keys": [k.to_json() for k in self.keys],
            "files": [f.to_json() for f in self.files],
        }

    def encode(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse a manifest strictly; anything malformed is a BundleVerificationError."""
        try:
            doc = json.loads(data)
            if doc["format_version"] != FORMAT_VERSION:
                raise BundleVerificationError(
                    f"bundle format version {doc['format_version']} is not supported "
                    f"(this tool reads version {FORMAT_VERSION})", path=MANIFEST,
                    hint="export the bundle and verify it with the same sif-lifecycle release")
            files = tuple(FileEntry(str(f["path"]), str(f["kind"]), int(f["size"]),
                                    str(f["sha256"])) for f in doc["files"])
            keys = tuple(KeyEntry(str(k["fingerprint"]), str(k["kind"]), str(k["state"]),
                                  str(k["file"]), tuple(str(c) for c in k["certificates"]))
                         for k in doc["keys"])
            origin = doc.get("log_origin")
            if origin is not None and not isinstance(origin, str):
                raise TypeError("log_origin is not a string")
            version = doc["version"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise TypeError("version is not a positive integer")
            sets = tuple(ImageSetEntry(str(e["name"]), str(e["strategy"]), str(e["identity"]))
                         for e in doc["image_sets"])
            manifest = cls(_time(doc["created"]), _time(doc["valid_until"]), files, version,
                           tuple(str(r) for r in doc["revoked"]), sets, keys, origin,
                           {str(k): str(v) for k, v in doc["limits"].items()})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise BundleVerificationError(f"malformed manifest ({exc!r})", path=MANIFEST) from None
        if len({f.path for f in files}) != len(files):
            raise BundleVerificationError("the manifest lists a file twice", path=MANIFEST)
        return manifest


def _time(text: Any) -> datetime:
    value = datetime.fromisoformat(str(text))
    if value.utcoffset() is None:
        raise ValueError(f"time {text!r} has no timezone")
    return value


# -- the DSSE envelope ----------------------------------------------------------------------------


def sign_manifest(payload: bytes, key: dsse.SigningKey) -> bytes:
    envelope = dsse.Envelope(payload, (), PAYLOAD_TYPE).signed_by(key)
    return envelope.to_bytes() + b"\n"


@dataclass(frozen=True)
class SignedManifest:
    payload: bytes
    keyid: str
    signature: bytes


def _strict_b64(text: Any, what: str) -> bytes:
    try:
        if not isinstance(text, str):
            raise ValueError
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise BundleVerificationError(f"the envelope's {what} is not base64", path=ENVELOPE) from None
    return raw


def parse_envelope(data: bytes) -> SignedManifest:
    """The one signature of a bundle envelope; other payload types and extra signatures refused."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise BundleVerificationError("the manifest envelope is not JSON", path=ENVELOPE) from None
    if not isinstance(doc, dict) or doc.get("payloadType") != PAYLOAD_TYPE:
        raise BundleVerificationError(f"the envelope's payloadType is not {PAYLOAD_TYPE}",
                                      path=ENVELOPE)
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(
            signatures[0], dict) or not isinstance(signatures[0].get("keyid"), str):
        raise BundleVerificationError("the envelope must hold exactly one signature with a keyid",
                                      path=ENVELOPE)
    return SignedManifest(_strict_b64(doc.get("payload"), "payload"), signatures[0]["keyid"],
                          _strict_b64(signatures[0].get("sig"), "signature"))


def check_signature(signed: SignedManifest, key: dsse.PublicKey) -> None:
    if signed.keyid != dsse.keyid(key):
        raise BundleVerificationError(
            f"the manifest is signed by key {signed.keyid}, not by the pinned bundle key "
            f"{dsse.keyid(key)}", path=ENVELOPE,
            hint="a bundle from another source; pin its key with --trust-key only if you trust it")
    if not dsse.verify_pae(key, signed.signature, dsse.pae(PAYLOAD_TYPE, signed.payload)):
        raise BundleVerificationError("the manifest signature does not verify", path=ENVELOPE,
                                      hint="the manifest was changed after signing")
