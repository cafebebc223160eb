"""C2SP signed notes with Ed25519 keys, the envelope of checkpoints and signed timestamps.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature::

    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>

The key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), and a verifier key
is written ``<name>+<8 hex digits of key ID>+<base64(0x01 || public key)>``, as in Go's
``golang.org/x/mod/sumdb/note``, so Go's reference opens what this module signs. Opening is strict:
malformed text or signature lines, a known key whose signature fails, or a note signed by no
known key are all errors; signatures by unknown keys are kept aside, never trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lifecycle.errors import LogError, LogProofError

ALG_ED25519 = 1
SIG_PREFIX = "— "
MAX_SIGNATURES = 100


def check_key_name(name: str) -> str:
    """Key names are non-empty and have no whitespace or '+' (it separates verifier key fields)."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise LogError(f"invalid note key name {name!r}", hint="use e.g. 'example.org/log'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID binding a name to an Ed25519 public key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise LogProofError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode() != text:
        raise LogProofError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: ed25519.Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, _raw_public(self.public_key))

    def verifier_key(self) -> str:
        """The ``name+keyid+base64`` string users pin, accepted by Go's ``note.NewVerifier``."""
        raw = bytes([ALG_ED25519]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    @classmethod
    def from_verifier_key(cls, text: str) -> NoteVerifier:
        """Parse and check a verifier key string; the key ID must match name and key."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise LogError(
                f"verifier key {text!r} is not <name>+<8 hex digits>+<base64 key>",
                hint="copy it from 'sif-lifecycle tlog verifier-key'",
            )
        name, hex_id, b64 = parts
        check_key_name(name)
        raw = _b64decode(b64, "the verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise LogError("the verifier key is not an Ed25519 key (algorithm byte 0x01, 32 bytes)")
        if key_id(name, raw[1:]).hex() != hex_id.lower():
            raise LogError(f"the key ID {hex_id} in the verifier key does not match name and key")
        return cls(name, ed25519.Ed25519PublicKey.from_public_bytes(raw[1:]))

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: ed25519.Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, ed25519.Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key())

    def signature_line(self, text: bytes) -> str:
        sig = self.verifier.key_id + self.private_key.sign(text)
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(sig).decode()}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified and those by unknown keys."""

    text: str
    verified: tuple[Signature, ...]
    unknown: tuple[Signature, ...]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise LogError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise LogError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Encode ``text`` (ending in a newline) with one signature line per signer."""
    _check_text(text)
    if "\n\n" in text:
        raise LogError("note text must not contain a blank line")
    if not signers:
        raise LogError("a note needs at least one signer")
    body = text.encode()
    return body + b"\n" + "".join(s.signature_line(body) for s in signers).encode()


def _parse_signature(line: str) -> Signature:
    if not line.startswith(SIG_PREFIX):
        raise LogProofError(f"note signature line {line!r} does not start with '— '")
    name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
    try:
        check_key_name(name)
    except LogError:
        raise LogProofError(f"note signature line {line!r} has an invalid key name") from None
    raw = _b64decode(b64, f"the signature of {name!r}")
    if len(raw) < 5:
        raise LogProofError(f"the signature of {name!r} is too short")
    return Signature(name, raw[:4], raw[4:])


def open_note(message: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse ``message`` and check its signatures; at least one known key must have signed it."""
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise LogProofError("the note is not valid UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in decoded):
        raise LogProofError("the note contains control characters other than newline")
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n") or split + 2 == len(decoded):
        raise LogProofError("the note has no signature block after a blank line")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise LogProofError(f"the note has more than {MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    unknown: list[Signature] = []
    for line in lines:
        sig = _parse_signature(line)
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unknown.append(sig)
        elif not verifier.verify(text.encode(), sig.signature):
            raise LogProofError(f"the note signature by {sig.name!r} does not verify")
        else:
            verified.append(sig)
    if not verified:
        names = ", ".join(sorted({s.name for s in unknown})) or "nobody"
        raise LogProofError(
            f"the note is signed by {names}, none of them a trusted log key",
            hint="pass the log's verifier key",
        )
    return Note(text, tuple(verified), tuple(unknown))
