"""The DSSE envelopes of an image's signature objects, walked the same way by every check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from lifecycle.errors import SignatureFormatError
from lifecycle.integrity import dsse
from lifecycle.sif.format import Descriptor
from lifecycle.sif.image import SifImage


def dsse_envelopes(image: SifImage, groups: Sequence[int] = ()
                   ) -> Iterator[tuple[Descriptor, dsse.Envelope]]:
    """Each signature object linked to ``groups`` (default all) that holds a well-formed DSSE
    envelope. PGP objects are not envelopes; a broken envelope is skipped, because the image
    check (``integrity.verify``) reports it."""
    for desc in image.objects:
        if not desc.is_signature or (groups and desc.linked_group not in groups):
            continue
        data = image.read_signature(desc)
        if not dsse.is_dsse(data):
            continue
        try:
            envelope = dsse.parse_envelope(data)
        except SignatureFormatError:
            continue
        yield desc, envelope
