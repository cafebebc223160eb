"""The key lifecycle as a pure state machine: which transitions exist, and the record of each one.

``pending -> active -> retiring -> retired`` is the normal life; ``revoked`` and ``compromised``
can be entered from any state that is not already terminal. The history is an append-only tuple,
so the store can persist it and a planner can reason about it without I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from lifecycle.errors import KeyStateError


class KeyState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"
    REVOKED = "revoked"
    COMPROMISED = "compromised"


_NEXT: dict[KeyState, frozenset[KeyState]] = {
    KeyState.PENDING: frozenset({KeyState.ACTIVE}),
    KeyState.ACTIVE: frozenset({KeyState.RETIRING}),
    KeyState.RETIRING: frozenset({KeyState.RETIRED}),
    KeyState.RETIRED: frozenset(),
    KeyState.REVOKED: frozenset({KeyState.COMPROMISED}),
    KeyState.COMPROMISED: frozenset(),
}
_FROM_ANY = frozenset({KeyState.REVOKED, KeyState.COMPROMISED})


@dataclass(frozen=True)
class Transition:
    """One recorded move; ``at`` is timezone-aware UTC, ``reason`` is free text for the audit."""

    from_state: KeyState | None
    to_state: KeyState
    at: datetime
    reason: str


def allowed(current: KeyState, target: KeyState) -> bool:
    """A revoked key may still be declared compromised (that moves the invalidity date earlier)."""
    if target in _NEXT[current]:
        return True
    return target in _FROM_ANY and current not in _FROM_ANY


def transition(
    history: tuple[Transition, ...], target: KeyState, *, at: datetime, reason: str
) -> tuple[Transition, ...]:
    """``history`` with a move to ``target`` appended; raises :class:`KeyStateError` if illegal."""
    if at.utcoffset() is None:
        raise ValueError("transition time must be timezone-aware")
    if not reason.strip():
        raise KeyStateError(f"a reason is required to move a key to {target}")
    current = history[-1].to_state if history else None
    if current is None:
        if target is not KeyState.PENDING:
            raise KeyStateError(f"a new key starts as pending, not {target}")
    elif not allowed(current, target):
        options = sorted(_NEXT[current] | (_FROM_ANY if current not in _FROM_ANY else set()))
        hint = f"from {current} it can go to: {', '.join(options) or 'nothing (terminal)'}"
        raise KeyStateError(f"a key cannot move from {current} to {target}", hint=hint)
    if history and at < history[-1].at:
        raise KeyStateError(f"transition time {at.isoformat()} is before the previous one")
    return (*history, Transition(current, target, at, reason))


def current_state(history: tuple[Transition, ...]) -> KeyState:
    if not history:
        raise KeyStateError("key has no recorded state")
    return history[-1].to_state
