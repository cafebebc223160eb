"""Helpers for the verification API tests: rewrite a signature object's unsigned parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lifecycle.integrity import dsse
from lifecycle.sif.format import DataType
from lifecycle.sif.image import ObjectSpec, SifImage
from tests.ephemeral.conftest import world  # noqa: F401  (fixture)
from tests.pki.conftest import memory_ca  # noqa: F401  (fixture)


def rewrite_envelope(image: Path, change: Callable[[dsse.Envelope], dsse.Envelope]) -> None:
    """Replace the image's DSSE envelope by ``change(envelope)``: what an attacker can do to the
    parts no signature covers (the signatures list, the extensions)."""
    with SifImage.open(image, writable=True) as img:
        (desc,) = [d for d in img.objects if d.is_signature]
        envelope = dsse.parse_envelope(img.read(desc, limit=1 << 24))
        spec = ObjectSpec(DataType.SIGNATURE, change(envelope).to_bytes(), group=0,
                          linked_raw=desc.linked_raw, extra=desc.extra)
        img.replace(desc, spec)


def duplicate_signatures(times: int) -> Callable[[dsse.Envelope], dsse.Envelope]:
    return lambda env: env._replace(signatures=env.signatures * times)


def set_kind(kind: str) -> Callable[[dsse.Envelope], dsse.Envelope]:
    def change(env: dsse.Envelope) -> dsse.Envelope:
        signatures = tuple(
            s._replace(extension=dsse.Extension(kind, s.extension.ext))
            if s.extension is not None else s for s in env.signatures)
        return env._replace(signatures=signatures)
    return change
