"""Talking to a transparency log, in this process (its database) or over HTTP (``serve``).

A signer needs four things from a log: its verifier key, to submit an entry and get back the
evidence for it, the current checkpoint and consistency proofs. :class:`LocalLogClient` does them
on a :class:`Log`; :class:`HttpLogClient` asks a ``sif-lifecycle serve`` (standard library
``urllib``). Both hand back evidence only once the append is durable, and neither is trusted:
callers verify the evidence against the pinned verifier key like any verifier would.

The HTTP API (all JSON unless noted; hashes and bytes in standard base64)::

    POST /tlog/entries                     {"payload_digest": "sha256:HEX", "signature": B64,
                                            "certificate": B64, "image_id": ID, "payload": B64}
                                           -> {"index": N, "evidence": <Evidence JSON>}
         (needs "Authorization: Bearer TOKEN"; the certificate must come from the log's
         signing CA and the signature verify over the payload, see lifecycle.tlog.admission)
    GET  /tlog/entries/N                   -> {"index", "leaf_hash", "entry", "timestamp"}
    GET  /tlog/evidence/N[?size=S]         -> <Evidence JSON>
    GET  /tlog/checkpoint[?size=S]         -> signed checkpoint note (text/plain)
    GET  /tlog/proof/inclusion?index=N[&size=S]
    GET  /tlog/proof/consistency?old=M[&size=S]
    GET  /tlog/key                         -> verifier key (text/plain)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from lifecycle.errors import LogError
from lifecycle.tlog.entry import Submission, parse_digest
from lifecycle.tlog.evidence import Evidence
from lifecycle.tlog.log import Log
from lifecycle.tlog.proof import ConsistencyProof

MAX_ANSWER = 4 * 1024 * 1024
TOKEN_ENV = "SIF_LIFECYCLE_TLOG_TOKEN"  # noqa: S105 - the name of the variable


class LogClient(Protocol):
    """What signing and consistency checks need from a log, wherever it runs."""

    def verifier_key(self) -> str: ...

    def submit(self, submission: Submission) -> Evidence:
        """Append and return the entry's evidence; returns only after the append is durable."""
        ...

    def checkpoint(self) -> bytes: ...

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof: ...


def submission_to_json(submission: Submission) -> dict[str, Any]:
    doc = {
        "payload_digest": submission.payload_digest_text(),
        "signature": base64.b64encode(submission.signature).decode(),
        "certificate": base64.b64encode(submission.certificate).decode(),
        "image_id": submission.image_id,
    }
    if submission.payload is not None:
        doc["payload"] = base64.b64encode(submission.payload).decode()
    return doc


def _b64(doc: Mapping[str, Any], name: str) -> bytes:
    value = doc[name]
    if not isinstance(value, str):
        raise LogError(f"the submission's {name} is not a base64 string")
    return base64.b64decode(value, validate=True)


def submission_from_json(doc: Any) -> Submission:
    """Parse an untrusted submission; :class:`LogError` says which field is wrong."""
    if not isinstance(doc, Mapping):
        raise LogError("the submission is not a JSON object")
    try:
        algorithm, digest = parse_digest(str(doc["payload_digest"]))
        return Submission(
            digest,
            _b64(doc, "signature"),
            _b64(doc, "certificate"),
            doc["image_id"],
            algorithm,
            _b64(doc, "payload") if "payload" in doc else None,
        )
    except KeyError as exc:
        raise LogError(f"the submission has no {exc.args[0]!r}") from None
    except (binascii.Error, ValueError):
        raise LogError("the submission's signature, certificate or payload is not base64") from None


class LocalLogClient:
    """The log in this process's database (needs the log key to sign evidence)."""

    def __init__(self, log: Log, verifier_key: str, now: datetime | None = None) -> None:
        self.log = log
        self._verifier_key = verifier_key
        self.now = now
        """When entries are integrated (None: the log's clock)."""

    def at(self, now: datetime) -> LocalLogClient:
        """The same log, integrating entries at ``now`` (a planned action's time)."""
        return LocalLogClient(self.log, self._verifier_key, now)

    def verifier_key(self) -> str:
        return self._verifier_key

    def submit(self, submission: Submission) -> Evidence:
        logged = self.log.append(submission, self.now)
        return self.log.evidence(logged.index)

    def checkpoint(self) -> bytes:
        return self.log.signed_checkpoint()

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        return self.log.consistency_proof(old_size, new_size)


class HttpLogClient:
    """A log served by ``sif-lifecycle serve`` at ``url`` (e.g. ``http://127.0.0.1:8080``).

    Appends send ``token`` as a bearer token; without one, ``$SIF_LIFECYCLE_TLOG_TOKEN``.
    """

    def __init__(self, url: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise LogError(f"log URL {url!r} is not http(s)", hint="e.g. http://127.0.0.1:8080")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "").strip() or None

    def _call(self, path: str, body: bytes | None = None,
              query: Mapping[str, int] | None = None) -> bytes:
        url = f"{self.url}/tlog/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            url, data=body, method="POST" if body is not None else "GET", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return bytes(answer.read(MAX_ANSWER))
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode("utf-8", "replace")
            try:
                detail = str(json.loads(detail)["error"])
            except (ValueError, KeyError, TypeError):
                detail = detail.strip() or exc.reason
            raise LogError(f"the log at {self.url} refused {path}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise LogError(f"the log at {self.url} did not answer: {exc}",
                           hint="check --log-url and that 'sif-lifecycle serve' runs") from None

    def _json(self, path: str, body: bytes | None = None,
              query: Mapping[str, int] | None = None) -> Any:
        data = self._call(path, body, query)
        try:
            return json.loads(data)
        except ValueError:
            raise LogError(f"the log at {self.url} answered {path} with non-JSON") from None

    def verifier_key(self) -> str:
        return self._call("key").decode("utf-8", "replace").strip()

    def submit(self, submission: Submission) -> Evidence:
        body = json.dumps(submission_to_json(submission)).encode()
        answer = self._json("entries", body)
        if not isinstance(answer, dict):
            raise LogError(f"the log at {self.url} answered the submission with no evidence")
        return Evidence.from_json(answer.get("evidence") or {})

    def evidence(self, index: int, size: int | None = None) -> Evidence:
        query = {"size": size} if size is not None else {}
        return Evidence.from_json(self._json(f"evidence/{index}", query=query))

    def get(self, index: int) -> dict[str, Any]:
        answer = self._json(f"entries/{index}")
        if not isinstance(answer, dict):
            raise LogError(f"the log at {self.url} answered entry {index} with no entry")
        return answer

    def checkpoint(self) -> bytes:
        return self._call("checkpoint")

    def inclusion_proof(self, index: int, size: int | None = None) -> dict[str, Any]:
        query = {"index": index} | ({"size": size} if size is not None else {})
        answer = self._json("proof/inclusion", query=query)
        if not isinstance(answer, dict):
            raise LogError(f"the log at {self.url} answered with no proof")
        return answer

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        return ConsistencyProof.from_json(
            self._json("proof/consistency", query={"old": old_size, "size": new_size}))
