"""The roles of the CA's certificates, as stored in the ``certificates.role`` column."""

from __future__ import annotations

import enum


class CaRole(enum.StrEnum):
    ROOT = "root"
    INTERMEDIATE = "intermediate"
    """The signing CA that issues the long-lived code-signing (leaf) certificates."""
    LEAF = "leaf"
    OCSP = "ocsp"
    """The delegated OCSP responder, issued by the intermediate."""
    EPHEMERAL = "ephemeral"
    """The dedicated CA under the root that only issues minutes-long certificates for in-memory
    keys: kept apart so that its compromise or policy never touches the long-lived signers."""
    EPHEMERAL_LEAF = "ephemeral-leaf"
    TSA = "tsa"
    """The local time-stamping authority (EKU timeStamping), issued by the intermediate."""
