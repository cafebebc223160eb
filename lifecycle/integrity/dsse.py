"""DSSE envelopes as the reference writes and reads them (spec section 5), plus DSSE v1.1 extensions.

The envelope is compact JSON with a fixed key order; every signature in it is over the same
PAE-encoded payload, which is what lets one envelope carry the signatures of several keys
(spec 6.4). Evidence for long-term verification rides in each signature's ``extension``
(DSSE v1.1), which the reference's parser ignores.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from lifecycle.errors import SignatureFormatError
from lifecycle.integrity.gojson import go_get, load_json
from lifecycle.integrity.keycodec import ssh_public_blob

PAYLOAD_TYPE = "application/vnd.sylabs.sif-metadata+json"
MAX_SIGNATURES = 1024

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def __getattr__(name: str) -> Any:
    """``SigningKey`` and ``PublicKey``, the unions of the key types, made on first use: an
    Ed25519 check never loads cryptography's RSA and EC modules (start-up, docs/performance.md)."""
    if name not in ("SigningKey", "PublicKey"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    unions = {"SigningKey": rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
              "PublicKey": rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey}
    globals().update(unions)
    return unions[name]


def keyid(public_key: PublicKey) -> str:
    """OpenSSH SHA-256 fingerprint of the key, the keyid the reference puts in envelopes (5.4)."""
    blob = ssh_public_blob(public_key)
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: the exact bytes every signature covers (5.2)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_pae(key: SigningKey, message: bytes) -> bytes:
    """Sign as the CLIs configure it: RSA PKCS#1 v1.5/SHA-256, ECDSA SHA-256 DER, pure Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def verify_pae(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is valid; ECDSA also accepts IEEE-P1363 ``r||s`` like the reference."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            try:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                half = (key.curve.key_size + 7) // 8
                if len(signature) != 2 * half:
                    raise
                r = int.from_bytes(signature[:half], "big")
                s = int.from_bytes(signature[half:], "big")
                key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        else:
            return False  # not a DSSE key type: the key loaders refuse those
    except (InvalidSignature, ValueError):
        return False
    return True


class Extension(NamedTuple):
    """A DSSE v1.1 per-signature extension: ``{"kind": ..., "ext": {...}}``."""

    kind: str
    ext: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ext": dict(self.ext)}


class Signature(NamedTuple):
    keyid: str
    sig: bytes
    extension: Extension | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode()}
        if self.extension is not None:
            out["extension"] = self.extension.to_dict()
        return out


class Envelope(NamedTuple):
    payload: bytes
    signatures: tuple[Signature, ...] = ()
    payload_type: str = PAYLOAD_TYPE

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_bytes(self) -> bytes:
        """Compact JSON in the reference's key order, no trailing newline (sif >= 2.17.1)."""
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [s.to_dict() for s in self.signatures],
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    def signed_by(self, key: SigningKey, extension: Extension | None = None) -> Envelope:
        """This envelope with ``key``'s signature added, replacing an earlier one by the same key."""
        kid = keyid(key.public_key())
        new = Signature(kid, sign_pae(key, self.pae()), extension)
        kept = tuple(s for s in self.signatures if s.keyid != kid or not kid)
        return Envelope(self.payload, (*kept, new), self.payload_type)

    def without(self, keyids: set[str]) -> Envelope:
        return Envelope(
            self.payload,
            tuple(s for s in self.signatures if s.keyid not in keyids),
            self.payload_type,
        )


def _b64(text: Any, what: str) -> bytes:
    """Standard base64 (strict, padded), then URL-safe, as go-securesystemslib decodes."""
    if not isinstance(text, str):
        raise SignatureFormatError(f"DSSE {what} is not a string")
    raw = text.encode("ascii", "replace")
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(raw, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    raise SignatureFormatError(f"DSSE {what} is not valid base64")


def is_dsse(data: bytes) -> bool:
    """Detection rule of the reference (5.6.1): a JSON object with the sylabs payload type."""
    if data.lstrip()[:1] != b"{":
        return False
    try:
        doc = load_json(data)
    except SignatureFormatError:
        return False
    return isinstance(doc, dict) and go_get(doc, "payloadType") == PAYLOAD_TYPE


def parse_envelope(data: bytes) -> Envelope:
    doc = load_json(data)
    if not isinstance(doc, dict) or go_get(doc, "payloadType") != PAYLOAD_TYPE:
        raise SignatureFormatError(f"DSSE payloadType is not {PAYLOAD_TYPE}")
    raw_sigs = go_get(doc, "signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise SignatureFormatError("DSSE envelope has no signatures")
    if len(raw_sigs) > MAX_SIGNATURES:
        raise SignatureFormatError(f"DSSE envelope has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for item in raw_sigs:
        if not isinstance(item, dict):
            raise SignatureFormatError("DSSE signature entry is not an object")
        kid = go_get(item, "keyid") or ""
        if not isinstance(kid, str):
            raise SignatureFormatError("DSSE keyid is not a string")
        ext_doc = go_get(item, "extension")
        extension = None
        if isinstance(ext_doc, dict):
            kind, ext = go_get(ext_doc, "kind"), go_get(ext_doc, "ext")
            if isinstance(kind, str) and isinstance(ext, dict):
                extension = Extension(kind, ext)
        signatures.append(Signature(kid, _b64(go_get(item, "sig"), "sig"), extension))
    return Envelope(_b64(go_get(doc, "payload"), "payload"), tuple(signatures))
