"""sif-lifecycle: long-term signature lifecycle management for SIF container images.

The Python API (see docs/api.md)::

    from lifecycle import TrustMaterial, verify
    verify("image.sif", TrustMaterial(keys=("signing.pub",)))  # raises VerificationError

Every name is imported on first use, so ``import lifecycle`` (which each submodule import and
so every CLI start pays for) costs nothing: ``--help`` must not load the verification API.
``lifecycle.verify`` and ``lifecycle.sign`` are the functions, not the modules of the same
name: :class:`_Package` keeps the import system from rebinding them to the modules.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lifecycle._version import __version__

if TYPE_CHECKING:
    from lifecycle.errors import LifecycleError, VerificationError
    from lifecycle.integrity.policy import Policy, PolicyMode
    from lifecycle.integrity.sign import SignOptions
    from lifecycle.sign import EphemeralSignResult, SignResult, sign, sign_ephemeral
    from lifecycle.verification.identity import IdentityPolicy
    from lifecycle.verify import CertificateCheck, TrustMaterial, VerificationResult, verify

_HOMES = {
    "CertificateCheck": "lifecycle.verify",
    "EphemeralSignResult": "lifecycle.sign",
    "IdentityPolicy": "lifecycle.verification.identity",
    "LifecycleError": "lifecycle.errors",
    "Policy": "lifecycle.integrity.policy",
    "PolicyMode": "lifecycle.integrity.policy",
    "SignOptions": "lifecycle.integrity.sign",
    "SignResult": "lifecycle.sign",
    "TrustMaterial": "lifecycle.verify",
    "VerificationError": "lifecycle.errors",
    "VerificationResult": "lifecycle.verify",
    "sign": "lifecycle.sign",
    "sign_ephemeral": "lifecycle.sign",
    "verify": "lifecycle.verify",
}
"""Where each public name lives."""

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


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """The ``lifecycle`` package, whose API functions outrank its submodules of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and value.__name__ == _HOMES.get(name):
            value = getattr(value, name)  # `import lifecycle.verify` binds the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
