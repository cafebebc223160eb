"""Verification bundles: everything an air-gapped site needs to verify images, signed and dated.

Public API: :func:`export`, :func:`export_to_outbox` (the service's hook), :func:`open_bundle`
(verify + import into the trust store) and :func:`bundle_keys` (keys for ``verify --bundle``).
"""

from lifecycle.bundles.exporter import BundleReport, ExportOptions, export, export_to_outbox
from lifecycle.bundles.offline import BundleKeys, bundle_keys
from lifecycle.bundles.verify import OpenedBundle, open_bundle

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
