"""Signed notes, checkpoints and signed timestamps: formats, strict parsing, tampering."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from lifecycle.errors import KeyMaterialError, LogError, LogProofError
from lifecycle.tlog import Checkpoint, NoteSigner, NoteVerifier, Timestamp, open_checkpoint
from lifecycle.tlog.keys import decrypt_signer, encrypt_signer
from lifecycle.tlog.note import open_note, sign_note
from lifecycle.tlog.timestamp import open_timestamp

# The example key and note of Go's golang.org/x/mod/sumdb/note tests (an independent signer).
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()


def go_signer() -> NoteSigner:
    return NoteSigner("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(GO_SEED))


def test_signing_matches_go_reference_note_byte_for_byte() -> None:
    signer = go_signer()
    assert signer.verifier.verifier_key() == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    note = open_note(GO_NOTE, [NoteVerifier.from_verifier_key(GO_VKEY)])
    assert note.text == GO_TEXT
    assert [s.name for s in note.verified] == ["PeterNeumann"]


@pytest.mark.parametrize(
    "bad",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm byte
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
    ],
)
def test_bad_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(LogError):
        NoteVerifier.from_verifier_key(bad)


def test_unknown_key_only_note_is_refused(signer: NoteSigner) -> None:
    with pytest.raises(LogProofError, match="none of them a trusted log key"):
        open_note(GO_NOTE, [signer.verifier])


def test_extra_unknown_signature_is_kept_apart(signer: NoteSigner) -> None:
    other = NoteSigner.generate("someone.else")
    message = sign_note("hello\n", [other, signer])
    note = open_note(message, [signer.verifier])
    assert [s.name for s in note.verified] == [signer.name]
    assert [s.name for s in note.unknown] == ["someone.else"]


def _mutations(message: bytes) -> list[bytes]:
    text = message.decode()
    body, _, sigs = text.rpartition("\n\n")
    line = sigs.rstrip("\n")
    name, b64 = line[2:].split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return [
        (body.replace("hello", "hellO") + "\n\n" + sigs).encode(),  # text changed
        (body + "\n\n— " + name + " " + base64.b64encode(bytes(raw)).decode() + "\n").encode(),
        (body + "\n\n" + line).encode(),  # no final newline
        (body + "\n" + sigs).encode(),  # no blank line
        (body + "\n\n- " + line[2:] + "\n").encode(),  # ASCII dash
        (body + "\n\n— " + name + "  " + b64 + "\n").encode(),  # two spaces
        (body + "\n\n— " + name + " " + b64.rstrip("=") + "\n").encode(),  # unpadded
        (body + "\n\n— " + name + " AAAA\n").encode(),  # too short
        (body.replace("hello", "hel\rlo") + "\n\n" + sigs).encode(),  # control character
        b"\xff" + message,  # not UTF-8
    ]


def test_tampered_or_malformed_notes_are_refused(signer: NoteSigner) -> None:
    message = sign_note("hello\nworld\n", [signer])
    open_note(message, [signer.verifier])
    for bad in _mutations(message):
        with pytest.raises(LogProofError):
            open_note(bad, [signer.verifier])


def test_note_text_rules(signer: NoteSigner) -> None:
    for text in ["no newline", "blank\n\nline\n", "tab\tchar\n"]:
        with pytest.raises(LogError):
            sign_note(text, [signer])
    with pytest.raises(LogError):
        NoteSigner.generate("has space")


def test_checkpoint_round_trip_and_strict_parse(signer: NoteSigner) -> None:
    cp = Checkpoint(signer.name, 42, bytes(range(32)), ("ext line",))
    message = cp.sign(signer)
    assert message.decode().startswith(
        f"{signer.name}\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\next line\n\n— "
    )
    assert open_checkpoint(message, [signer.verifier], origin=signer.name) == cp
    with pytest.raises(LogProofError, match="not 'other'"):
        open_checkpoint(message, [signer.verifier], origin="other")
    root = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    for body in [
        f"o\n042\n{root}\n",
        f"o\n-1\n{root}\n",
        f"o\n+1\n{root}\n",
        "o\n1\nAAEC\n",
        f"\n1\n{root}\n",
        f"o\n1\n{root}\n\nx\n",
        f"o\n1\n{root}",
        "o\n1\n",
    ]:
        with pytest.raises(LogProofError):
            Checkpoint.parse(body)


def test_timestamp_round_trip_and_tampering(signer: NoteSigner) -> None:
    ts = Timestamp(signer.name, 7, b"\x01" * 32, datetime(2027, 5, 6, 7, 8, 9, 999, tzinfo=UTC))
    message = ts.sign(signer)
    got = open_timestamp(message, [signer.verifier])
    assert got == ts
    assert got.integrated_time == datetime(2027, 5, 6, 7, 8, 9, tzinfo=UTC)
    forged = message.replace(b"2027-05-06T07:08:09Z", b"2026-05-06T07:08:09Z")
    with pytest.raises(LogProofError):
        open_timestamp(forged, [signer.verifier])
    with pytest.raises(LogProofError):
        Timestamp.parse(ts.body().replace("index 7", "index 07"))
    with pytest.raises(LogProofError):
        Timestamp.parse(ts.body().replace("09Z", "09+00:00"))


def test_log_key_file_is_encrypted_and_round_trips(signer: NoteSigner) -> None:
    data = encrypt_signer(signer, b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in data
    back = decrypt_signer(data, b"correct horse")
    assert back.verifier.verifier_key() == signer.verifier.verifier_key()
    with pytest.raises(KeyMaterialError, match="cannot decrypt"):
        decrypt_signer(data, b"wrong")
    with pytest.raises(KeyMaterialError):
        encrypt_signer(signer, b"")
    with pytest.raises(KeyMaterialError, match="not a sif-lifecycle log key"):
        decrypt_signer(b"{}", b"x")


def test_verifier_key_whose_base64_contains_plus_round_trips() -> None:
    for seed in range(256):
        key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        vkey = NoteSigner("log", key).verifier.verifier_key()
        if "+" in vkey.split("+", 2)[2]:
            assert NoteVerifier.from_verifier_key(vkey).verifier_key() == vkey
            return
    raise AssertionError("no seed gave a '+' in the key's base64")
