"""Verification bundles: everything an air-gapped site needs to verify images, signed and dated.

Public API: :func:`export`, :func:`export_to_outbox` (the service's hook), :func:`open_bundle`
(verify + import into the trust store) and :func:`bundle_keys` (keys for ``verify --bundle``).
Imported lazily: reading a bundle needs neither the store nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.bundles.exporter import BundleReport, ExportOptions, export, export_to_outbox
    from lifecycle.bundles.offline import BundleKeys, bundle_keys
    from lifecycle.bundles.verify import OpenedBundle, open_bundle

_WHERE = {
    "BundleReport": "exporter", "ExportOptions": "exporter", "export": "exporter",
    "export_to_outbox": "exporter", "BundleKeys": "offline", "bundle_keys": "offline",
    "OpenedBundle": "verify", "open_bundle": "verify",
}

__all__ = [
    "BundleKeys",
    "BundleReport",
    "ExportOptions",
    "OpenedBundle",
    "bundle_keys",
    "export",
    "export_to_outbox",
    "open_bundle",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"lifecycle.bundles.{_WHERE[name]}"), name)
