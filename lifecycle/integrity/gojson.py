"""JSON as the reference's Go code reads it: untrusted input, keys matched case-insensitively."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lifecycle.errors import SignatureFormatError


def load_json(data: bytes) -> Any:
    """Parse untrusted JSON; hostile nesting or encoding raises SignatureFormatError, not a crash."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SignatureFormatError(f"not valid JSON: {exc}") from None


def go_get(doc: Mapping[str, Any], name: str) -> Any:
    """Go's encoding/json matches keys case-insensitively; the last match wins."""
    found: Any = None
    for key, value in doc.items():
        if key.lower() == name.lower():
            found = value
    return found
