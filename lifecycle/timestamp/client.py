"""Ask RFC 3161 time-stamping authorities for tokens over a signature's bytes.

One request per TSA over HTTP (``application/timestamp-query``), with a fresh nonce and
``certReq`` set so the token carries the TSA certificate. An answer is accepted only if it is
granted, names our nonce and the imprint we sent, and parses as a token: what it proves (whose
TSA, valid when) is for :mod:`lifecycle.timestamp.proof` to judge at verification time.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

from lifecycle.config import TimestampTable
from lifecycle.errors import TimestampError
from lifecycle.timestamp.tokens import MAX_TOKEN_BYTES

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
DEFAULT_TIMEOUT = 10.0


def check_reply(reply: bytes, nonce: int | None, data: bytes, *, source: str) -> bytes:
    """``reply`` if it is a granted token for ``data`` with ``nonce``; else :class:`TimestampError`."""
    try:
        response = decode_timestamp_response(reply)
        status = PKIStatus(response.status)
    except (ValueError, TypeError):
        raise TimestampError("the answer is not a DER TimeStampResp", path=source) from None
    if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        text = "; ".join(response.status_string) or "no reason given"
        raise TimestampError(f"the TSA refused the request ({status.name}): {text}", path=source)
    try:
        info = response.tst_info
        imprint = info.message_imprint
    except ValueError:
        raise TimestampError("the answer carries no readable token", path=source) from None
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("the token names another nonce than the request's (a replayed "
                             "or misdirected answer)", path=source)
    if imprint.message != hashlib.sha256(data).digest():
        raise TimestampError("the token covers other data than what was sent", path=source)
    return reply


@dataclass(frozen=True)
class TsaClient:
    """One TSA reached at ``url``."""

    url: str
    timeout: float = DEFAULT_TIMEOUT

    def timestamp(self, data: bytes) -> bytes:
        """A checked token (DER ``TimeStampResp``) over ``data`` (its SHA-256 is sent)."""
        if not self.url.startswith(("http://", "https://")):
            raise TimestampError(f"timestamp URL {self.url} is not http(s)")
        request = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
                   .cert_request(cert_request=True).build())
        http = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url, data=request.as_bytes(), method="POST",
            headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE})
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as answer:  # noqa: S310
                reply = bytes(answer.read(MAX_TOKEN_BYTES + 1))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TimestampError(f"the TSA did not answer: {exc}", path=self.url,
                                 hint="check [timestamp] urls / --timestamp-url") from None
        if len(reply) > MAX_TOKEN_BYTES:
            raise TimestampError(f"the answer is larger than {MAX_TOKEN_BYTES} bytes",
                                 path=self.url)
        return check_reply(reply, request.nonce, data, source=self.url)


@dataclass(frozen=True)
class Timestamper:
    """Tokens from several TSAs; at least ``required`` must answer or signing stops."""

    clients: tuple[TsaClient, ...]
    required: int = 1

    @classmethod
    def for_urls(cls, urls: Sequence[str], required: int = 1,
                 timeout: float = DEFAULT_TIMEOUT) -> Timestamper:
        return cls(tuple(TsaClient(u, timeout) for u in urls), required)

    def __call__(self, signature: bytes) -> tuple[bytes, ...]:
        tokens: list[bytes] = []
        problems: list[str] = []
        for client in self.clients:
            try:
                tokens.append(client.timestamp(signature))
            except TimestampError as exc:
                problems.append(str(exc))
        if len(tokens) < self.required:
            raise TimestampError(
                f"{len(tokens)} of the {self.required} timestamps the policy requires were "
                f"obtained: {'; '.join(problems)}", hint="nothing was written")
        return tuple(tokens)


@dataclass(frozen=True)
class AuthorityStamper:
    """Tokens from a TSA in this process (``respond``: request DER -> response DER), checked
    like any answer: the simulation's and tests' local TSA at a simulated time."""

    respond: Callable[[bytes], bytes]

    def __call__(self, signature: bytes) -> tuple[bytes, ...]:
        request = (TimestampRequestBuilder().data(signature).hash_algorithm(HashAlgorithm.SHA256)
                   .cert_request(cert_request=True).build())
        return (check_reply(self.respond(request.as_bytes()), request.nonce, signature,
                            source="local TSA"),)


def configured(table: TimestampTable | None) -> Timestamper | None:
    """The ``[timestamp]`` TSAs (None when the config names none)."""
    if table is None or not table.urls:
        return None
    return Timestamper.for_urls(table.urls, table.required, table.timeout.total_seconds())
