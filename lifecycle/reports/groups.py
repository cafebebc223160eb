"""Fold per-image rows into groups a person can read: 50,000 images re-signed the same day are one
row with a count, not 50,000 rows. JSON keeps every image; the page and Markdown show groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lifecycle.model.fleet import Action, ActionKind, day
from lifecycle.reports.forecast import Forecast

SHOWN_PATHS = 5
"""Paths listed per group; the rest are counted."""
_PER_IMAGE = {ActionKind.RESIGN, ActionKind.DROP, ActionKind.PURGE}


@dataclass(frozen=True)
class ForecastGroup:
    first: Forecast
    """A representative: every member has the same set, status, horizons and next action."""
    paths: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.paths)

    @property
    def shown(self) -> tuple[str, ...]:
        return self.paths[:SHOWN_PATHS]

    @property
    def more(self) -> int:
        return max(self.count - SHOWN_PATHS, 0)


@dataclass(frozen=True)
class ActionGroup:
    first: Action
    keys: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.keys)

    @property
    def reason(self) -> str:
        if self.count == 1:
            return self.first.reason
        return f"{self.count} images: {self.first.reason} (and {self.count - 1} more like it)"


def _forecast_key(f: Forecast) -> tuple[object, ...]:
    keeps = f.keeps_verifiable
    return (f.image_set, f.status, f.certificate, f.key, f.tool,
            (keeps.kind, keeps.not_before, keeps.due) if keeps else None)


def group_forecasts(forecasts: Sequence[Forecast]) -> list[ForecastGroup]:
    """Groups in order of urgency: images that do not verify first, then the earliest dates."""
    groups: dict[tuple[object, ...], list[Forecast]] = {}
    for f in forecasts:
        groups.setdefault(_forecast_key(f), []).append(f)
    out = [ForecastGroup(members[0], tuple(m.path for m in members))
           for members in groups.values()]
    return sorted(out, key=_urgency)


def _urgency(group: ForecastGroup) -> tuple[object, ...]:
    """Not verifying with this tool first, then its earliest end; among the rest, the earliest
    stock date, and logged images (fine for good, whatever stock tools say) last."""
    f = group.first

    def ends(until: datetime | None) -> str:
        return day(until) if until else "9999"

    return (f.tool.verifies, ends(f.tool.until), bool(f.logged), f.certificate.verifies,
            ends(f.certificate.until), f.image_set, group.paths[0])


def group_actions(actions: Sequence[Action]) -> list[ActionGroup]:
    """Per-image actions of one kind, set and window fold into one row; others stay single."""
    groups: dict[tuple[object, ...], list[Action]] = {}
    for a in actions:
        key: tuple[object, ...] = ((a.kind, a.image_set, a.not_before, a.due)
                                   if a.kind in _PER_IMAGE else (a.key,))
        groups.setdefault(key, []).append(a)
    return [ActionGroup(members[0], tuple(m.key for m in members)) for members in groups.values()]
