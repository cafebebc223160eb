"""sif-lifecycle: long-term signature lifecycle management for SIF container images.

The Python API (see docs/api.md)::

    from lifecycle import TrustMaterial, verify
    verify("image.sif", TrustMaterial(keys=("signing.pub",)))  # raises VerificationError

The modules imported here are light (dataclasses and enums); what does the work is imported
when a verification or signing runs, so ``import lifecycle`` and every CLI start stay cheap.
The functions are bound eagerly: ``lifecycle.verify``/``lifecycle.sign`` would otherwise be
the modules of the same name once anything imported them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifecycle._version import __version__
from lifecycle.errors import LifecycleError, VerificationError
from lifecycle.integrity.policy import Policy, PolicyMode
from lifecycle.sign import EphemeralSignResult, SignResult, sign, sign_ephemeral
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import CertificateCheck, TrustMaterial, VerificationResult, verify

__all__ = [
    "CertificateCheck",
    "EphemeralSignResult",
    "IdentityPolicy",
    "LifecycleError",
    "Policy",
    "PolicyMode",
    "SignOptions",
    "SignResult",
    "TrustMaterial",
    "VerificationError",
    "VerificationResult",
    "__version__",
    "sign",
    "sign_ephemeral",
    "verify",
]

if TYPE_CHECKING:
    from lifecycle.integrity.sign import SignOptions


def __getattr__(name: str) -> Any:
    """``SignOptions`` lives with the signing machinery: imported on first use."""
    if name == "SignOptions":
        from lifecycle.integrity.sign import SignOptions

        return SignOptions
    raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
