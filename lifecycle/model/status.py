"""What the inventory says about an image, and the events it records: stored as these strings.

Pure (no database import), so the planner's model can use it.
"""

from __future__ import annotations

import enum


class ImageStatus(enum.StrEnum):
    PRESENT = "present"
    """On disk and intact: the only status the strategies act on."""
    REMOVED = "removed"
    """Gone from disk; its history stays."""
    TAMPERED = "tampered"
    """Its signed metadata no longer matches its content, or a re-sign was refused."""


class ImageEvent(enum.StrEnum):
    """The ``kind`` of an inventory event row."""

    TRACKED = "tracked"
    CHANGED = "changed"
    REAPPEARED = "reappeared"
    REMOVED = "removed"
    TAMPERED = "tampered"
    REFUSED = "refused"
    EPHEMERAL_SIGNED = "ephemeral-signed"
    """An applied (or found) ephemeral signature: its identity and keyid are the detail."""
