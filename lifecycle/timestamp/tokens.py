"""RFC 3161 tokens in a DSSE signature's v1.1 ``extension``.

A signature without other evidence gets its own kind::

    {"kind": "https://sif-lifecycle.dev/timestamp/v1",
     "ext": {"timestamps": ["<base64 DER TimeStampResp>", ...]}}

A signature that already carries evidence (ephemeral or logged, see
:mod:`lifecycle.verification.extension`) keeps its kind and gains the same ``timestamps`` list
beside its other fields. What is timestamped is the signature's bytes (its ``sig``), as Sigstore
does, so a token can be added later without touching the signature: the extension is not
covered by it, and stock verifiers ignore the extension.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence

from lifecycle.errors import TimestampError
from lifecycle.integrity.dsse import Extension, Signature
from lifecycle.integrity.sign import Attest

TIMESTAMP_KIND = "https://sif-lifecycle.dev/timestamp/v1"
FIELD = "timestamps"
MAX_TOKENS = 8
MAX_TOKEN_BYTES = 64 * 1024


def with_tokens(extension: Extension | None, tokens: Sequence[bytes]) -> Extension | None:
    """``extension`` with ``tokens`` added after the ones it holds (None stays None if no token)."""
    if not tokens:
        return extension
    encoded = [base64.b64encode(t).decode() for t in tokens]
    if extension is None:
        return Extension(TIMESTAMP_KIND, {FIELD: encoded})
    held = extension.ext.get(FIELD)
    earlier = list(held) if isinstance(held, list) else []
    return Extension(extension.kind, {**extension.ext, FIELD: [*earlier, *encoded]})


def tokens_of(extension: Extension | None) -> tuple[bytes, ...]:
    """The DER tokens a signature carries (none: empty); a malformed list raises."""
    if extension is None or FIELD not in extension.ext:
        return ()
    held = extension.ext[FIELD]
    if not isinstance(held, list) or not all(isinstance(t, str) for t in held):
        raise TimestampError("the signature's timestamps are not a list of base64 strings")
    if len(held) > MAX_TOKENS:
        raise TimestampError(f"the signature carries {len(held)} timestamps, more than "
                             f"{MAX_TOKENS}")
    out = []
    for text in held:
        if len(text) > MAX_TOKEN_BYTES * 4 // 3 + 4:
            raise TimestampError(f"a timestamp is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            out.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise TimestampError("a timestamp is not valid base64") from None
    return tuple(out)


def stamping(timestamper: Callable[[bytes], Sequence[bytes]], inner: Attest | None = None) -> Attest:
    """An :data:`Attest` hook that adds tokens over each fresh signature's bytes to its extension
    (after ``inner``'s evidence, if any), before anything is written."""

    def attest(message: bytes, signature: Signature) -> Extension:
        extension = inner(message, signature) if inner is not None else signature.extension
        stamped = with_tokens(extension, timestamper(signature.sig))
        if stamped is None:
            raise TimestampError("no timestamp was obtained")
        return stamped

    return attest
