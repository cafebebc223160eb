"""Add RFC 3161 tokens to the DSSE signatures of an image that carry none.

Only the extension of each such signature changes (a token is over the signature's bytes, which
stay as they are), so every signature still verifies, by stock tools too. Each envelope is
rewritten with :meth:`SifImage.replace` (the new object is complete before the old one is
freed): a crash leaves the old envelope or the new one, never a half-written one. All tokens are
obtained before the first write; if the policy's tokens cannot be had, nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lifecycle.errors import LifecycleError
from lifecycle.integrity.envelopes import dsse_envelopes
from lifecycle.sif.format import DataType
from lifecycle.sif.image import ObjectSpec, SifImage
from lifecycle.timestamp.tokens import tokens_of, with_tokens

Stamper = Callable[[bytes], Sequence[bytes]]


def restamp(path: str | Path, stamper: Stamper) -> int:
    """Timestamp every DSSE signature of ``path`` lacking a token; the number timestamped."""
    with SifImage.open(str(path), writable=True) as image:
        changes = []
        for desc, envelope in dsse_envelopes(image):  # a broken envelope is not ours to repair
            fresh = 0
            signatures = []
            for sig in envelope.signatures:
                try:
                    has = bool(tokens_of(sig.extension))
                except LifecycleError:
                    has = True  # a malformed list is left for verification to report
                if has:
                    signatures.append(sig)
                    continue
                extension = with_tokens(sig.extension, stamper(sig.sig))
                signatures.append(sig._replace(extension=extension))
                fresh += 1
            if fresh:
                changes.append((desc, envelope._replace(signatures=tuple(signatures)),
                                fresh))
        for desc, envelope, _ in changes:
            image.replace(desc, ObjectSpec(DataType.SIGNATURE, envelope.to_bytes(), group=0,
                                           linked_raw=desc.linked_raw, extra=desc.extra))
    return sum(n for _, _, n in changes)
