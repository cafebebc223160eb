"""The transparency log's HTTP API (see :mod:`lifecycle.tlog.client` for the routes).

Kept apart from the socket plumbing in :mod:`lifecycle.service.http`: a request is a method, a
path, a query, its headers and a body, and the answer a status, bytes and a content type, so the
routes are tested without a server. Appends need the bearer token (``[tlog] append_token_file``;
without one they are refused) and a submission :func:`lifecycle.tlog.admission.admit` accepts.
An append is answered only after :meth:`Log.append` returned, i.e. after the database commit.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from cryptography import x509

from lifecycle.errors import LifecycleError, LogError
from lifecycle.tlog.admission import admit
from lifecycle.tlog.client import submission_from_json
from lifecycle.tlog.log import Log

log = logging.getLogger(__name__)
MAX_SUBMISSION = 1024 * 1024
MAX_INDEX = 2**63 - 2  # the database's BIGINT, with room for index + 1
JSON, TEXT = "application/json", "text/plain; charset=utf-8"

Answer = tuple[HTTPStatus, bytes, str]
Issuers = Callable[[], Sequence[x509.Certificate]]
_ENTRY = re.compile(r"/tlog/entries/([0-9]{1,19})")
_EVIDENCE = re.compile(r"/tlog/evidence/([0-9]{1,19})")
_NUMBER = re.compile(r"[0-9]{1,19}")


def _json(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Answer:
    return status, json.dumps(data, sort_keys=True).encode(), JSON


def error_answer(status: HTTPStatus, message: str) -> Answer:
    """``{"error": message}``: the body of every 4xx and 5xx the service sends."""
    return _json({"error": message}, status)


def _index(text: str, name: str) -> int:
    if not _NUMBER.fullmatch(text) or int(text) > MAX_INDEX:
        raise LogError(f"{name} {text[:40]!r} is not an integer from 0 to {MAX_INDEX}")
    return int(text)


def _int(query: Mapping[str, list[str]], name: str, *, required: bool = False) -> int | None:
    values = query.get(name)
    if not values:
        if required:
            raise LogError(f"missing query parameter {name!r}")
        return None
    return _index(values[-1], f"query parameter {name!r}")


def _no_issuers() -> Sequence[x509.Certificate]:
    return ()


@dataclass
class LogEndpoints:
    """Routes over one log; ``verifier_key`` is what ``/tlog/key`` publishes.

    ``append_token`` (None: appends over HTTP are off) authenticates appends and ``issuers``
    gives the signing CA certificates an appended entry's certificate must come from.
    """

    log: Log
    verifier_key: str
    append_token: bytes | None = None
    issuers: Issuers = field(default=_no_issuers)
    max_submission: int = MAX_SUBMISSION

    def handle(self, method: str, target: str, body: bytes = b"",
               headers: Mapping[str, str] | None = None) -> Answer:
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        try:
            if method == "POST":
                if url.path != "/tlog/entries":
                    return error_answer(HTTPStatus.NOT_FOUND, "not found")
                refused = self._refused((headers or {}).get("authorization", ""))
                return refused or self._add(body)
            return self._get(url.path, query)
        except LifecycleError as exc:
            status = HTTPStatus.NOT_FOUND if "does not exist" in exc.message or (
                "is not in the log" in exc.message) else HTTPStatus.BAD_REQUEST
            return error_answer(status, exc.message)

    def _refused(self, authorization: str) -> Answer | None:
        """403 when appends are off, 401 without the right bearer token (compared in constant
        time), None when the caller may append."""
        if self.append_token is None:
            return error_answer(HTTPStatus.FORBIDDEN, "appends over HTTP are disabled on this log; "
                                "set [tlog] append_token_file in the server's config to enable them")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode("utf-8", "replace"), self.append_token):
            return error_answer(HTTPStatus.UNAUTHORIZED, "appending needs the log's bearer token "
                                "(client: [tlog] append_token_file or $SIF_LIFECYCLE_TLOG_TOKEN)")
        return None

    def _add(self, body: bytes) -> Answer:
        if not 0 < len(body) <= self.max_submission:
            return error_answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "bad submission length")
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise LogError("the submission is not JSON") from None
        submission = submission_from_json(doc)
        admit(submission, self.issuers(), self.log.clock())
        logged = self.log.append(submission)  # durable when it returns
        log.info("logged entry %d for image %s", logged.index, logged.entry.submission.image_id)
        evidence = self.log.evidence(logged.index, logged.index + 1)
        return _json({"index": logged.index, "evidence": evidence.to_json()})

    def _get(self, path: str, query: Mapping[str, list[str]]) -> Answer:
        size = _int(query, "size")
        if path == "/tlog/key":
            return HTTPStatus.OK, (self.verifier_key + "\n").encode(), TEXT
        if path == "/tlog/checkpoint":
            return HTTPStatus.OK, self.log.signed_checkpoint(size), TEXT
        if path == "/tlog/proof/inclusion":
            index = _int(query, "index", required=True) or 0
            return _json(self.log.inclusion_proof(index, size).to_json())
        if path == "/tlog/proof/consistency":
            old = _int(query, "old", required=True) or 0
            return _json(self.log.consistency_proof(old, size).to_json())
        if match := _ENTRY.fullmatch(path):
            logged = self.log.get(_index(match[1], "entry index"))
            return _json({
                "index": logged.index,
                "leaf_hash": base64.b64encode(logged.leaf_hash).decode(),
                "entry": logged.entry.to_json(),
                "timestamp": self.log.signed_timestamp(logged.index).decode(),
            })
        if match := _EVIDENCE.fullmatch(path):
            return _json(self.log.evidence(_index(match[1], "entry index"), size).to_json())
        return error_answer(HTTPStatus.NOT_FOUND, "not found")
