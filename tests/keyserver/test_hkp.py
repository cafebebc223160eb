"""The HKP client against a real sks, and against keyservers that lie, stall or flood."""

from __future__ import annotations

import base64
import socket
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pgpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.config import KeyserverSettings
from lifecycle.errors import KeyserverError
from lifecycle.integrity.pgp import KEY_BLOCK, armored_key_blocks, fingerprint
from lifecycle.keyserver.hkp import (
    MAX_ANSWER,
    MAX_KEY_PACKETS,
    HkpClient,
    IndexFlag,
    base_url,
    normalize_fingerprint,
    parse_index,
)
from lifecycle.keyserver.pool import clients, fetch, push_all
from tests.keygen import new_pgp_key
from tests.keyserver.hostile import Answer, hostile_server

FAST = {"timeout": timedelta(seconds=2), "retries": 0}


def public(key: Any) -> bytes:
    return str(key.pubkey).encode()


@pytest.fixture(scope="module")
def key() -> Any:
    return new_pgp_key("ed25519", "Build Bot")


@pytest.fixture(scope="module")
def other() -> Any:
    return new_pgp_key("ed25519", "Someone Else")


def test_push_get_and_search_on_sks(sks: Any, key: Any) -> None:
    client = HkpClient(sks.url, **FAST)
    fpr = fingerprint(key)
    assert client.get(fpr) is None
    assert client.search("signer@example.org") == []
    client.add(public(key))
    fetched = client.get(fpr.lower())
    assert fingerprint(fetched) == fpr and fetched.is_public
    (entry,) = client.search("signer@example.org")
    assert entry.key_id == fpr
    assert entry.uids[0].user_id == "Build Bot <signer@example.org>"
    assert entry.created == key.created.replace(tzinfo=UTC, microsecond=0)
    assert not entry.revoked
    (by_fpr,) = client.search(f"0x{fpr}")
    assert by_fpr.key_id == fpr


def test_hkp_scheme_maps_to_port_11371() -> None:
    assert base_url("hkp://keys.example.org") == "http://keys.example.org:11371"
    assert base_url("hkps://keys.example.org/") == "https://keys.example.org"
    assert base_url("hkp://127.0.0.1:1234") == "http://127.0.0.1:1234"
    with pytest.raises(KeyserverError, match="not hkp"):
        base_url("ftp://keys.example.org")


def test_a_different_key_is_never_trusted(key: Any, other: Any) -> None:
    answer = Answer(body=public(other))
    with (hostile_server(answer) as url,
          pytest.raises(KeyserverError, match=r"different key .*not trusted") as err):
        HkpClient(url, **FAST).get(fingerprint(key))
    assert str(err.value).startswith(url)
    assert answer.requests == [f"/pks/lookup?op=get&options=mr&search=0x{fingerprint(key)}"]


def test_the_right_key_among_others_is_picked(key: Any, other: Any) -> None:
    with hostile_server(Answer(body=public(other) + b"\n" + public(key))) as url:
        assert fingerprint(HkpClient(url, **FAST).get(fingerprint(key))) == fingerprint(key)


def test_a_forged_self_signature_is_refused(key: Any) -> None:
    """The right primary key, but a user ID its self-signature does not cover."""
    binary = bytes(key.pubkey)
    assert binary.count(b"Build Bot") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forged, _ = pgpy.PGPKey.from_blob(binary.replace(b"Build Bot", b"Build Bxt"))
    with (hostile_server(Answer(body=str(forged).encode())) as url,
          pytest.raises(KeyserverError, match="self-signature does not verify; not trusted")):
        HkpClient(url, **FAST).get(fingerprint(key))


def test_an_expired_key_is_still_served(sks: Any) -> None:
    """Expiry is judged by verify at a time, not by the fetch: old signatures stay checkable."""
    old = new_pgp_key("ed25519", "Old Bot", expires=timedelta(seconds=1))
    HkpClient(sks.url, **FAST).add(public(old))
    time.sleep(1.1)
    assert fingerprint(HkpClient(sks.url, **FAST).get(fingerprint(old))) == fingerprint(old)


@pytest.mark.parametrize("body", [b"", b"<html>hello</html>", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                                  b"garbage\n-----END PGP PUBLIC KEY BLOCK-----\n", bytes(range(256))])
def test_garbage_is_one_line(key: Any, body: bytes) -> None:
    with (hostile_server(Answer(body=body)) as url,
          pytest.raises(KeyserverError) as err):
        HkpClient(url, **FAST).get(fingerprint(key))
    assert "\n" not in str(err.value) and str(err.value).startswith(url)


def test_a_flood_is_cut_off(key: Any) -> None:
    with (hostile_server(Answer(body=b"A" * (MAX_ANSWER + 10))) as url,
          pytest.raises(KeyserverError, match="more than")):
        HkpClient(url, **FAST).get(fingerprint(key))


def test_a_slow_drip_hits_the_deadline(key: Any) -> None:
    with (hostile_server(Answer(body=b"x" * 400, delay=0.05)) as url,
          pytest.raises(KeyserverError, match="did not answer")):
        HkpClient(url, timeout=timedelta(seconds=0.5), retries=0).get(fingerprint(key))


def test_a_down_keyserver_is_retried_with_backoff(key: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    client = HkpClient(f"http://127.0.0.1:{port}", timeout=timedelta(seconds=1), retries=3,
                       backoff=timedelta(seconds=0.5), sleep=waits.append)
    with pytest.raises(KeyserverError, match=r"did not answer \(4 attempts\)"):
        client.add(public(key))
    assert waits == [0.5, 1.0, 2.0]


def test_a_refusal_is_not_retried(key: Any) -> None:
    answer = Answer(status=400, body=b"<html><body>Malformed key</body></html>")
    waits: list[float] = []
    with (hostile_server(answer) as url,
          pytest.raises(KeyserverError, match="refused the key: HTTP 400 Malformed key")):
        HkpClient(url, retries=3, sleep=waits.append).add(public(key))
    assert waits == [] and len(answer.requests) == 1


def test_private_keys_are_never_pushed(key: Any) -> None:
    with pytest.raises(KeyserverError, match="private key"):
        HkpClient("http://127.0.0.1:1").add(str(key).encode())


def test_fingerprints_are_normalized() -> None:
    fpr = "2E08DF1D669DE3981D76B9C1938D72AD7683282E"
    assert normalize_fingerprint("0x" + fpr.lower()) == fpr
    assert normalize_fingerprint("2E08 DF1D 669D E398 1D76  B9C1 938D 72AD 7683 282E") == fpr
    for bad in ("938D72AD7683282E", "zz" * 20, ""):
        with pytest.raises(KeyserverError, match="not an OpenPGP fingerprint"):
            normalize_fingerprint(bad)


def test_machine_readable_index() -> None:
    text = ("info:1:2\n"
            "pub:2E08DF1D669DE3981D76B9C1938D72AD7683282E:22:256:1796126108:1827662108:\n"
            "uid:Build%20Bot%20%3Cbot@example.org%3E:1796126108::\n"
            "uid:Old%3A%20name:1796126108::r\n"
            "pub:938D72AD7683282E:1:4096:1796126108::re\n"
            "sig:ignored:line\n")
    first, second = parse_index(text)
    assert first.key_id == "2E08DF1D669DE3981D76B9C1938D72AD7683282E"
    assert (first.algorithm, first.bits) == (22, 256)
    assert first.expires == datetime(2027, 12, 1, 11, 55, 8, tzinfo=UTC)
    assert [u.user_id for u in first.uids] == ["Build Bot <bot@example.org>", "Old: name"]
    assert first.uids[1].flags == {IndexFlag.REVOKED}
    assert second.revoked and IndexFlag.EXPIRED in second.flags and second.uids == ()
    (evil,) = parse_index("pub:938D72AD7683282E\nuid:Eve%1B[2J%0Aroot:::\n")
    assert evil.uids[0].user_id == "Eve\ufffd[2J\ufffdroot"
    for bad in ("pub:nothex:1", "uid:x::", "info:2:1", "pub:938D72AD7683282E:x",
                "pub:938D72AD7683282E:1:1:99999999999999"):
        with pytest.raises(ValueError, match="line 1"):
            parse_index(bad)


def test_garbled_index_is_a_keyserver_error() -> None:
    with (hostile_server(Answer(body=b"pub:zz:1\n")) as url,
          pytest.raises(KeyserverError, match="garbled index: line 1")):
        HkpClient(url, **FAST).search("bot")


def test_pool_pushes_everywhere_and_reports_the_failure(sks: Any, key: Any) -> None:
    settings = KeyserverSettings(urls=(sks.url, "http://127.0.0.1:1"), timeout=timedelta(seconds=1),
                                 retries=0)
    servers = clients(settings)
    with pytest.raises(KeyserverError, match=r"127\.0\.0\.1:1: did not answer"):
        push_all(servers, public(key))
    assert HkpClient(sks.url, **FAST).get(fingerprint(key)) is not None
    got = fetch(servers, fingerprint(key))
    assert got.url == sks.url and fingerprint(got.key) == fingerprint(key)
    down_first = fetch(list(reversed(servers)), fingerprint(key))
    assert down_first.url == sks.url
    with pytest.raises(KeyserverError, match="did not answer"):
        fetch(servers[1:], fingerprint(key))
    with pytest.raises(KeyserverError, match="no keyserver configured"):
        clients(KeyserverSettings())


def test_a_redirect_is_a_refusal(key: Any) -> None:
    answer = Answer(status=302, headers={"Location": "/pks/lookup?op=get&search=0xOTHER"})
    with hostile_server(answer) as url, pytest.raises(KeyserverError, match="HTTP 302"):
        HkpClient(url, **FAST).get(fingerprint(key))
    assert len(answer.requests) == 1


def test_a_5xx_is_retried_then_reported(key: Any) -> None:
    answer = Answer(status=503, body=b"<html>busy</html>")
    waits: list[float] = []
    with hostile_server(answer) as url, pytest.raises(KeyserverError, match="HTTP 503 busy"):
        HkpClient(url, retries=2, backoff=timedelta(seconds=1), sleep=waits.append).get(
            fingerprint(key))
    assert waits == [1.0, 2.0] and len(answer.requests) == 3


def test_a_lying_keyserver_is_not_passed_over(sks: Any, key: Any, other: Any) -> None:
    HkpClient(sks.url, **FAST).add(public(key))
    with hostile_server(Answer(body=public(other))) as liar:
        servers = clients(KeyserverSettings(urls=(liar, sks.url), retries=0))
        with pytest.raises(KeyserverError, match="different key"):
            fetch(servers, fingerprint(key))


def armor(binary: bytes, *, with_crc: bool = True) -> bytes:
    """RFC 4880 section 6 armor, CRC-24 included (pgpy needs it to parse the block)."""
    crc = 0xB704CE
    for byte in binary if with_crc else b"":
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    body = base64.b64encode(binary).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    check = base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode()
    return (f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{lines}\n={check}\n"
            "-----END PGP PUBLIC KEY BLOCK-----\n").encode()


def test_a_flooded_key_is_refused_before_parsing(key: Any) -> None:
    """Certificate flooding: the right key with thousands of extra signature packets."""
    binary = bytes(key.pubkey)
    signature = bytes(key.userids[0].selfsig)
    assert armor(binary).count(b"\n") > 3
    with hostile_server(Answer(body=armor(binary + signature * MAX_KEY_PACKETS, with_crc=False))) as url, \
            pytest.raises(KeyserverError, match="more than 2000 packets"):
        HkpClient(url, **FAST).get(fingerprint(key))
    with hostile_server(Answer(body=armor(binary + signature * 10))) as url:
        assert fingerprint(HkpClient(url, **FAST).get(fingerprint(key))) == fingerprint(key)


def test_unterminated_blocks_are_found_in_linear_time(key: Any) -> None:
    """64 BEGIN lines before 4 MiB of junk cost the regex 10 s; the splitter does not rescan."""
    junk = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n" * 64 + b"A" * (MAX_ANSWER - 4096)
    with hostile_server(Answer(body=junk)) as url, \
            pytest.raises(KeyserverError, match="no readable key"):
        HkpClient(url, **FAST).get(fingerprint(key))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----", "-----END PGP PRIVATE KEY BLOCK-----",
    "-----BEGIN PGP ", "-----BEGIN PGP SIGNATURE-----", "x", "\n"]), max_size=14))
def test_the_block_splitter_matches_the_regex(parts: list[str]) -> None:
    text = "".join(parts)
    assert armored_key_blocks(text) == [m.group(0) for m in KEY_BLOCK.finditer(text)]
