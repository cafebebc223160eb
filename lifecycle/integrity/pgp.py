"""PGP clear-signed signature objects, byte-compatible with the reference (spec section 4).

pgpy does the cryptography and packet encoding. The clear-sign framing is done here because the
reference's framing differs from pgpy's (no CRC line, no trailing newline, critical creation-time
subpacket, issuer key ID hashed), and those bytes are what makes our objects identical to
``singularity sign`` output.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes

from lifecycle.clock import utc_now
from lifecycle.errors import KeyMaterialError, SignatureFormatError

if TYPE_CHECKING:
    from types import ModuleType

BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = "-----END PGP SIGNATURE-----"
ALLOWED_HASH_HEADERS = {
    "MD5", "SHA1", "RIPEMD160", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3-256", "SHA3-512",
}  # fmt: skip
VERIFY_HASHES = {"SHA224", "SHA256", "SHA384", "SHA512"}
MAX_CLEARSIGN_SIZE = 1024 * 1024
MAX_CLEARSIGN_LINES = 10_000
"""Real clear-signed objects are about a kilobyte in 15 lines (the metadata is one JSON line).
Splitting hostile text costs ~100 bytes per line: 8 MiB of newlines would take 800 MB, so both
are bounded before anything is split or handed to pgpy."""
KEY_BLOCK = re.compile(
    r"-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----.*?-----END PGP \1 KEY BLOCK-----", re.S
)


@contextmanager
def quiet() -> Iterator[None]:
    """pgpy warns about unimplemented self-checks on every call; they are not actionable here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@functools.cache
def _pgpy() -> ModuleType:
    """pgpy, imported on first use: it costs more than the rest of a verification's start-up,
    and only PGP keys and signatures need it (format detection and framing are done here)."""
    with quiet():
        import pgpy
        import pgpy.constants
        import pgpy.packet.packets
    module: ModuleType = pgpy
    return module


def armored_key_blocks(text: str) -> list[str]:
    """What :data:`KEY_BLOCK` matches, in order, found in linear time.

    The regex rescans the rest of the text for every BEGIN line that has no END: 64 of them
    before 4 MiB of junk took 10 s. Here a kind whose END is missing after some point is never
    searched for again, and every other search moves past what it found.
    """
    blocks: list[str] = []
    pos, no_end = 0, set()
    while (start := text.find("-----BEGIN PGP ", pos)) >= 0:
        pos = start + 1
        kind = next((k for k in ("PUBLIC", "PRIVATE")
                     if text.startswith(f"-----BEGIN PGP {k} KEY BLOCK-----", start)), None)
        if kind is None or kind in no_end:
            continue
        end_marker = f"-----END PGP {kind} KEY BLOCK-----"
        end = text.find(end_marker, start)
        if end < 0:
            no_end.add(kind)
            continue
        pos = end + len(end_marker)
        blocks.append(text[start:pos])
    return blocks


def load_keys(text: str, source: str) -> list[Any]:
    """Every armored key block in ``text`` (pgpy's own loader stops after the first)."""
    keys = []
    for block in armored_key_blocks(text):
        try:
            with quiet():
                key, _ = _pgpy().PGPKey.from_blob(block)
        except Exception as exc:  # pgpy raises many types on malformed input
            raise KeyMaterialError(f"unreadable PGP key block: {exc}", path=source) from None
        keys.append(key)
    if not keys:
        raise KeyMaterialError("no armored PGP key block found", path=source)
    return keys


def fingerprint(key: Any) -> str:
    return str(key.fingerprint).replace(" ", "")


def user_id(key: Any) -> str:
    uid = next(iter(key.userids), None)
    return str(uid.userid) if uid is not None else ""


@dataclass(frozen=True)
class ClearSigned:
    """A decoded clear-signed object: the signed text as handed to the verifier, and the packet."""

    text: bytes
    packet: bytes


def is_clearsign(data: bytes) -> bool:
    try:
        decode(data)
    except SignatureFormatError:
        return False
    return True


def decode(data: bytes) -> ClearSigned:
    """Parse with the reference's rules (spec 4.4); anything else is "format not recognized"."""
    if len(data) > MAX_CLEARSIGN_SIZE:
        raise SignatureFormatError(
            f"clear-signed message is {len(data)} bytes, more than the {MAX_CLEARSIGN_SIZE} allowed"
        )
    if (lines_count := data.count(b"\n") + 1) > MAX_CLEARSIGN_LINES:
        raise SignatureFormatError(
            f"clear-signed message has {lines_count} lines, more than the "
            f"{MAX_CLEARSIGN_LINES} allowed"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureFormatError("signature is not text") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    try:
        start = lines.index(BEGIN_SIGNED)
    except ValueError:
        raise SignatureFormatError("no PGP signed message") from None
    i = start + 1
    while i < len(lines) and lines[i] != "":
        name, _, value = lines[i].partition(":")
        hashes = {v.strip() for v in value.split(",")}
        if name != "Hash" or not hashes <= ALLOWED_HASH_HEADERS:
            raise SignatureFormatError(f"unexpected armor header {lines[i][:40]!r}")
        i += 1
    try:
        sig_start = lines.index(BEGIN_SIGNATURE, i + 1)
    except ValueError:
        raise SignatureFormatError("clear-signed message has no signature block") from None
    body = [line[2:] if line.startswith("- ") else line for line in lines[i + 1 : sig_start]]
    armor = [line.strip() for line in lines[sig_start + 1 :]]
    while armor and armor[-1] == "":
        armor.pop()
    if not armor or armor[-1] != END_SIGNATURE:
        raise SignatureFormatError("signature block does not end with the END line")
    armor.pop()
    j = 0
    while j < len(armor) and armor[j] != "" and ":" in armor[j]:
        j += 1  # armor headers such as Version: are allowed in the signature block
    payload = "".join(a for a in armor[j:] if a and not a.startswith("="))
    try:
        packet = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("signature block is not valid base64") from None
    return ClearSigned("\n".join(body).encode("utf-8"), packet)


def canonical_text(text: bytes) -> str:
    """OpenPGP canonical text for signing: trailing blanks stripped per line (pgpy adds CRLF)."""
    return "\n".join(line.rstrip(" \t") for line in text.decode("utf-8").split("\n"))


def encode(text: bytes, key: Any, created: datetime) -> bytes:
    """Clear-sign ``text`` with ``key``'s primary key (unlocked), as go-crypto frames it."""
    pgpy = _pgpy()
    packet = pgpy.packet.packets.SignatureV4()
    packet.header.tag = 2
    packet.header.version = 4
    with quiet():
        packet.subpackets.addnew("CreationTime", hashed=True, created=created.astimezone(UTC))
        next(iter(packet.subpackets._hashed_sp.values())).header.critical = True
        packet.subpackets.addnew("Issuer", hashed=True, _issuer=key.fingerprint.keyid)
        packet.subpackets.addnew(
            "IssuerFingerprint", hashed=True, _version=4, _issuer_fpr=key.fingerprint
        )
        packet.sigtype = pgpy.constants.SignatureType.CanonicalDocument
        packet.pubalg = key.key_algorithm
        packet.halg = pgpy.constants.HashAlgorithm.SHA256
        signature = pgpy.PGPSignature()
        signature._signature = packet
        signed = key._sign(canonical_text(text), signature, include_issuer_fingerprint=False)
    raw = base64.b64encode(bytes(signed._signature)).decode()
    armored = "\n".join(raw[i : i + 64] for i in range(0, len(raw), 64))
    framed = (
        f"{BEGIN_SIGNED}\nHash: SHA256\n\n{text.decode('utf-8')}\n"
        f"{BEGIN_SIGNATURE}\n\n{armored}\n{END_SIGNATURE}"
    )
    return framed.encode("utf-8")


@dataclass(frozen=True)
class PgpVerification:
    ok: bool
    issuer: str
    """Issuer key ID (16 hex digits) named by the signature packet."""
    fingerprint: str = ""
    """Primary-key fingerprint of the key that verified it."""
    user_id: str = ""
    error: str = ""
    created: datetime | None = None


def _read_signature(packet: bytes) -> tuple[Any, str, datetime, str]:
    """(signature, issuer key ID, creation time, hash name) of a packet, or SignatureFormatError.

    pgpy parses lazily: a packet that is not a signature, or lacks the creation-time subpacket,
    only fails when a property is read, with whatever exception type the property hits. A packet
    without an issuer key ID parses, but names no key (spec 4.4), so its issuer is empty.
    """
    pgpy = _pgpy()
    try:
        with quiet():
            signature = pgpy.PGPSignature.from_blob(packet)
            if not isinstance(signature._signature, pgpy.packet.packets.SignatureV4):
                raise SignatureFormatError("the packet is not an OpenPGP v4 signature")
            created = signature.created
            algorithm = signature.hash_algorithm
            issuer = str(signature.signer or "") if signature._signature.subpackets["Issuer"] else ""
    except SignatureFormatError:
        raise
    except Exception as exc:  # pgpy raises many types on malformed packets
        raise SignatureFormatError(f"unreadable PGP signature packet: {exc}") from None
    if not isinstance(created, datetime):
        raise SignatureFormatError("PGP signature packet has no creation time")
    known = isinstance(algorithm, pgpy.constants.HashAlgorithm)
    return signature, issuer, created, algorithm.name if known else ""


def _signature_matches(key: Any, text: str, signature: Any) -> bool:
    """The cryptographic check alone, by the primary key or the subkey the packet names.

    pgpy's ``PGPKey.verify`` also fails keys expired by the real clock, which would make
    ``verify --at`` of an earlier time impossible; expiry and revocation are judged by the
    caller at the time asked. Weak primitives still fail here, as in pgpy.
    """
    signer = key if key.fingerprint.keyid == signature.signer else key.subkeys.get(signature.signer)
    if signer is None:
        return False
    issues = signer.check_primitives()
    if issues and issues.causes_signature_verify_to_fail:
        return False
    verified = signer._key.verify(signature.hashdata(text), signature.__sig__,
                                  getattr(hashes, signature.hash_algorithm.name)())
    if verified is NotImplemented:
        raise SignatureFormatError(f"unsupported key algorithm {signature.key_algorithm}")
    return bool(verified)


def verify(signed: ClearSigned, keyring: list[Any], at: datetime | None = None) -> PgpVerification:
    """Verify like go-crypto's ``CheckDetachedSignature`` plus the reference's key checks (4.4).

    Key expiry and revocation are evaluated at ``at`` (default: now), as the reference does:
    the expiry of the newest self-signature made by then, and revocations made by then.
    """
    signature, issuer, created, hash_name = _read_signature(signed.packet)
    if hash_name not in VERIFY_HASHES:
        return PgpVerification(False, issuer, error="signature hash algorithm not accepted")
    if not issuer:
        return PgpVerification(False, issuer, error="signature packet names no issuer key ID")
    key = next(
        (k for k in keyring if issuer and (k.fingerprint.keyid == issuer or issuer in k.subkeys)),
        None,
    )
    if key is None:
        return PgpVerification(False, issuer, error=f"no key in keyring has key ID {issuer}")
    fpr, uid = fingerprint(key), user_id(key)
    try:
        with quiet():
            good = _signature_matches(key, canonical_text(signed.text), signature)
    except Exception as exc:  # pgpy raises PGPError and friends for unusable keys
        return PgpVerification(False, issuer, fpr, uid, f"signature check failed: {exc}", created)
    if not good:
        return PgpVerification(False, issuer, fpr, uid, "signature does not verify", created)
    from lifecycle.integrity.pgp_validity import expiry_at, revocation_at

    when = at or utc_now()
    expires = expiry_at(key, when)
    if expires is not None and expires <= when:
        return PgpVerification(False, issuer, fpr, uid, f"key expired at {expires:%Y-%m-%d}")
    if (revoked := revocation_at(key, when)) is not None:
        return PgpVerification(False, issuer, fpr, uid, f"key is revoked ({revoked[1].name.lower()}"
                               f", {revoked[0]:%Y-%m-%d})", created)
    return PgpVerification(True, issuer, fpr, uid, created=created)
