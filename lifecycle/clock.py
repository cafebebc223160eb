"""The one clock: timezone-aware UTC, and the type of a clock passed in.

The core takes ``now`` (or a :data:`Clock`) as an argument so tests and ``plan --at`` run at any
time; only the edges (CLI, service, signing without a given time) read the real clock, here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A source of the current time (timezone-aware UTC)."""


def utc_now() -> datetime:
    return datetime.now(UTC)
