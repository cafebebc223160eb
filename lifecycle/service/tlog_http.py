"""The transparency log's HTTP API (see :mod:`lifecycle.tlog.client` for the routes).

Kept apart from the socket plumbing in :mod:`lifecycle.service.http`: a request is a method, a
path, a query and a body, and the answer a status, bytes and a content type, so the routes are
tested without a server and served by the same ``ThreadingHTTPServer`` as CRLs and OCSP.
An append is answered only after :meth:`Log.append` returned, i.e. after the database commit.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from lifecycle.errors import LifecycleError, LogError
from lifecycle.tlog.client import submission_from_json
from lifecycle.tlog.log import Log

log = logging.getLogger(__name__)
MAX_SUBMISSION = 1024 * 1024
JSON, TEXT = "application/json", "text/plain; charset=utf-8"

Answer = tuple[HTTPStatus, bytes, str]
_ENTRY = re.compile(r"/tlog/entries/([0-9]{1,19})")
_EVIDENCE = re.compile(r"/tlog/evidence/([0-9]{1,19})")


def _json(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Answer:
    return status, json.dumps(data, sort_keys=True).encode(), JSON


def _error(status: HTTPStatus, message: str) -> Answer:
    return _json({"error": message}, status)


def _int(query: Mapping[str, list[str]], name: str, *, required: bool = False) -> int | None:
    values = query.get(name)
    if not values:
        if required:
            raise LogError(f"missing query parameter {name!r}")
        return None
    if not values[-1].isdigit():
        raise LogError(f"query parameter {name!r} is not a non-negative integer")
    return int(values[-1])


@dataclass
class LogEndpoints:
    """Routes over one log; ``verifier_key`` is what ``/tlog/key`` publishes."""

    log: Log
    verifier_key: str

    def handle(self, method: str, target: str, body: bytes = b"") -> Answer:
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        try:
            if method == "POST":
                if url.path != "/tlog/entries":
                    return _error(HTTPStatus.NOT_FOUND, "not found")
                return self._add(body)
            return self._get(url.path, query)
        except LifecycleError as exc:
            status = HTTPStatus.NOT_FOUND if "does not exist" in exc.message or (
                "is not in the log" in exc.message) else HTTPStatus.BAD_REQUEST
            return _error(status, exc.message)

    def _add(self, body: bytes) -> Answer:
        if not 0 < len(body) <= MAX_SUBMISSION:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "bad submission length")
        try:
            doc = json.loads(body)
        except ValueError:
            raise LogError("the submission is not JSON") from None
        logged = self.log.append(submission_from_json(doc))  # durable when it returns
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
            logged = self.log.get(int(match[1]))
            return _json({
                "index": logged.index,
                "leaf_hash": base64.b64encode(logged.leaf_hash).decode(),
                "entry": logged.entry.to_json(),
                "timestamp": self.log.signed_timestamp(logged.index).decode(),
            })
        if match := _EVIDENCE.fullmatch(path):
            return _json(self.log.evidence(int(match[1]), size).to_json())
        return _error(HTTPStatus.NOT_FOUND, "not found")
