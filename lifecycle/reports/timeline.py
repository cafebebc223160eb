"""The timeline's geometry: lanes, bars, markers and ticks in SVG user units, computed in Python.

The template only places what is computed here, so tests can check positions without a browser,
and the page needs no JavaScript. Two pixels per day: a year is ~730 px, so a laptop shows about
eighteen months and longer spans scroll horizontally.

Labels never overlap: each lane has three rows (top, middle, bottom); every label takes the first
of its rows where no other label of that lane is, horizontally, within reach (text widths are
estimated generously). A label with no free row is left off the drawing; its bar or marker still
carries it as a tooltip, and the tables list it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifecycle.model.cert_status import CertStatus
from lifecycle.model.fleet import Action, ActionKind, day, short
from lifecycle.model.key_state import KeyState
from lifecycle.reports.model import CertRow, CrlRow, KeyRow, ReportData, SetSummary

PX_PER_DAY = 2.0
LANE = 34
FOOTER = 26
HEADER = 44
LABEL_WIDTH = 300
MAX_SPAN = timedelta(days=3650)
LOOK_BACK = timedelta(days=180)
"""The page opens scrolled to the left: it starts at most this long before the report time, and
certificates that ended before that are left off (the tables still list them)."""
MAX_KEYS = 4
"""Key lanes per image set; more keys are counted in one lane (the tables list them all)."""
MAX_CERTIFICATES = 3
"""Certificate lanes per key: its newest generations."""
_KEY_RANK = {KeyState.ACTIVE: 0, KeyState.PENDING: 1, KeyState.RETIRING: 2}
STATUS_COLOURS = {CertStatus.CURRENT: "--cert", CertStatus.SUPERSEDED: "--old",
                  CertStatus.EXPIRED: "--expired", CertStatus.RETIRED: "--retired",
                  CertStatus.REVOKED: "--revoked"}
"""The colour (a CSS variable of the page) of each certificate status: bars and legend."""
CHAR_WIDTH = 7.2
"""An over-estimate of an 11 px character's advance (bold included), in SVG units."""
LABEL_GAP = 6.0
TOP, MIDDLE, BOTTOM = "top", "middle", "bottom"
_BASELINE = {TOP: 12, MIDDLE: 21, BOTTOM: 31}
"""Baselines within a lane of ``LANE`` units; the middle row overlaps both others."""
_CLASH = {TOP: {TOP, MIDDLE}, MIDDLE: {TOP, MIDDLE, BOTTOM}, BOTTOM: {MIDDLE, BOTTOM}}


@dataclass(frozen=True)
class Lane:
    y: int
    label: str
    detail: str
    kind: str


@dataclass(frozen=True)
class Bar:
    id: str
    kind: str
    """key, certificate, renewal or crl."""
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str
    css: str
    open_end: bool = False


@dataclass(frozen=True)
class Marker:
    id: str
    kind: str
    x: float
    y: float
    label: str
    title: str
    due: str
    keys: tuple[str, ...]
    """Idempotency keys of the actions it stands for (one marker per lane, kind and day)."""


@dataclass(frozen=True)
class Label:
    """A text drawn on the timeline, placed so that it overlaps no other label."""

    id: str
    x: float
    y: float
    text: str
    css: str
    anchor: str = "start"


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    major: bool


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    width: float
    height: float
    now_x: float
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]
    ticks: tuple[Tick, ...]
    labels: tuple[Label, ...] = ()


def _month(when: datetime) -> datetime:
    return datetime(when.year, when.month, 1, tzinfo=UTC)


def _next_month(when: datetime) -> datetime:
    return datetime(when.year + when.month // 12, when.month % 12 + 1, 1, tzinfo=UTC)


def _span(report: ReportData) -> tuple[datetime, datetime]:
    now = report.generated_at
    starts = [now - timedelta(days=60)]
    ends = [now + timedelta(days=180)]
    for cert in _shown_certificates(report):
        starts.append(cert.not_before)
        ends.append(cert.not_after)
    for key in report.keys:
        starts.append(key.activated_at or key.created_at)
        ends += [key.ends] if key.ends else []
    ends += [a.due for a in report.actions]
    ends += [s.verifiable_until for s in report.sets if s.verifiable_until]
    start = max(min(starts), now - LOOK_BACK)
    return _month(start), _next_month(min(max(ends), start + MAX_SPAN))


def _shown_certificates(report: ReportData) -> list[CertRow]:
    cutoff = report.generated_at - LOOK_BACK
    return [c for c in report.certificates if c.not_after >= cutoff]


def _ticks(layout: _Layout) -> list[Tick]:
    """A tick per month; January (and the first month) carry the year."""
    out = []
    at = layout.start
    while at <= layout.end:
        major = at.month == 1
        label = str(at.year) if major or at == layout.start else at.strftime("%b")
        out.append(Tick(layout.x(at), label, major))
        at = _next_month(at)
    return out


def _group(actions: Iterable[tuple[int, Action]]) -> dict[tuple[int, str, str], list[Action]]:
    groups: dict[tuple[int, str, str], list[Action]] = {}
    for lane, action in actions:
        groups.setdefault((lane, action.kind, day(action.due)), []).append(action)
    return groups


class _Layout:
    """Lanes and bars as they are added, top to bottom."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.width = round((end - start).total_seconds() / 86400 * PX_PER_DAY, 1)
        self.lanes: list[Lane] = []
        self.bars: list[Bar] = []
        self.lane_of: dict[str, int] = {}

    def x(self, when: datetime) -> float:
        clamped = min(max(when, self.start), self.end)
        return round((clamped - self.start).total_seconds() / 86400 * PX_PER_DAY, 1)

    def lane(self, label: str, detail: str, kind: str, *subjects: str) -> float:
        y = HEADER + len(self.lanes) * LANE
        for subject in subjects:
            self.lane_of[subject] = len(self.lanes)
        self.lanes.append(Lane(y, label, detail, kind))
        return y

    def keys(self, keys: Sequence[KeyRow], certs: Sequence[CertRow]) -> None:
        """The keys that matter most first (active, pending, retiring, newest); the rest are
        counted in one lane, so a set with hundreds of keys still fits on a screen."""
        ranked = sorted(keys, key=lambda key: (_KEY_RANK.get(key.state, len(_KEY_RANK)),
                                               -key.created_at.timestamp(), key.fingerprint))
        for key in ranked[:MAX_KEYS]:
            self.key(key, certs)
        if len(ranked) > MAX_KEYS:
            self.lane(f"and {len(ranked) - MAX_KEYS} more keys", "listed in the tables below",
                      "more")

    def key(self, key: KeyRow, certs: Sequence[CertRow]) -> None:
        y = self.lane(f"key {short(key.fingerprint)}", key.state, "key", key.fingerprint)
        begin, ends = key.activated_at or key.created_at, key.ends
        right = self.x(ends) if ends else self.width
        self.bars.append(Bar(
            f"key-{key.fingerprint}", "key", self.x(begin), y + 11,
            max(right - self.x(begin), 2), 12,
            (f"active since {day(begin)}" if key.state == KeyState.ACTIVE else
             f"{key.state}, active from {day(begin)}") + (f", dropped {day(ends)}" if ends else "")
            + (f", PGP expiry {day(key.expires_at)}" if key.expires_at else ""),
            f"key {key.fingerprint} ({key.state}): from {day(begin)} "
            + (f"to {day(ends)}" if ends else "with no planned end")
            + (f"; its PGP expiry is {day(key.expires_at)} (extended before it lapses)"
               if key.expires_at else ""),
            f"key {key.state}", ends is None))
        mine = [c for c in certs if c.key_fingerprint == key.fingerprint]
        for cert in sorted(mine, key=lambda c: c.not_before)[-MAX_CERTIFICATES:]:
            self.certificate(cert, key)

    def certificate(self, cert: CertRow, key: KeyRow) -> None:
        y = self.lane(f"certificate {short(cert.serial)}", str(cert.status), "certificate",
                      cert.serial)
        left, right = self.x(cert.not_before), self.x(cert.not_after)
        title = (f"certificate {cert.serial} of key {short(key.fingerprint)}: "
                 f"{day(cert.not_before)} to {day(cert.not_after)} ({cert.status})")
        self.bars.append(Bar(f"cert-{cert.serial}", "certificate", left, y + 8,
                             max(right - left, 2), 18, f"until {day(cert.not_after)}", title,
                             f"certificate {cert.status}"))
        if cert.renewal_opens is not None and cert.status == CertStatus.CURRENT:
            opens = self.x(cert.renewal_opens)
            self.bars.append(Bar(
                f"renewal-{cert.serial}", "renewal", opens, y + 8, max(right - opens, 2), 18,
                "", f"renewal window of {short(cert.serial)}: {day(cert.renewal_opens)} to "
                f"{day(cert.not_after)}", "renewal"))

    def section(self, label: str, detail: str) -> None:
        self.lane(label, detail, "section")

    def crl(self, crl: CrlRow) -> None:
        y = self.lane(f"{crl.role} CRL #{crl.number}", f"next update {day(crl.next_update)}",
                      "crl", "crl:" + crl.role)
        left = self.x(crl.this_update)
        self.bars.append(Bar(f"crl-{crl.role}", "crl", left, y + 10,
                             max(self.x(crl.next_update) - left, 2), 14,
                             f"next update {day(crl.next_update)}",
                             f"{crl.role} CRL #{crl.number}: {day(crl.this_update)} to "
                             f"{day(crl.next_update)}", "crl expired" if crl.expired else "crl"))


def verifiable(until: datetime | None) -> str:
    """``verifiable until 2027-06-03`` or ``verifiable indefinitely``."""
    return "verifiable " + until_text(until)


def until_text(until: datetime | None) -> str:
    """``until 2027-06-03`` or ``indefinitely``."""
    return f"until {day(until)}" if until else "indefinitely"


def _until_marker(layout: _Layout, summary: SetSummary, y: float) -> Marker:
    until = summary.verifiable_until
    label = verifiable(until)
    stock = day(summary.certificate_until) if summary.certificate_until else "n/a"
    return Marker(f"until-{summary.name}", "verifiable-until",
                  layout.x(until) if until else layout.width - 4, y + LANE / 2, label,
                  f"{summary.name}: {label} with sif-lifecycle; with stock --certificate "
                  f"until {stock}", day(until) if until else "", ())


def build_timeline(report: ReportData) -> Timeline:
    """Lay out one lane per image set, key, certificate and CRL; markers for planned actions."""
    layout = _Layout(*_span(report))
    certs = _shown_certificates(report)
    markers: list[Marker] = []
    for summary in report.sets:
        y = layout.lane(f"image set {summary.name}",
                        f"{summary.strategy}, {summary.present} image(s)", "set",
                        "set:" + summary.name)
        markers.append(_until_marker(layout, summary, y))
        layout.keys([key for key in report.keys if key.image_set == summary.name], certs)
    names = {s.name for s in report.sets}
    others = [key for key in report.keys if key.image_set not in names]
    if others:
        layout.section("keys of no image set", "not in the configuration")
        layout.keys(others, certs)
    if report.crls:
        layout.section("certificate authority", "revocation lists (CRLs)")
    for crl in report.crls:
        layout.crl(crl)
    placed = [(layout.lane_of[_action_lane(a)], a) for a in report.actions
              if _action_lane(a) in layout.lane_of]
    for n, ((index, kind, due), group) in enumerate(sorted(_group(placed).items())):
        label = kind if len(group) == 1 else f"{kind} ×{len(group)}"
        reasons = "\n".join(a.reason for a in group[:5])
        more = f"\n(and {len(group) - 5} more)" if len(group) > 5 else ""
        markers.append(Marker(f"action-{n}", kind, layout.x(group[0].due),
                              layout.lanes[index].y + LANE / 2, label,
                              f"{kind} due {due}\n{reasons}{more}", due,
                              tuple(a.key for a in group)))
    return Timeline(layout.start, layout.end, layout.width,
                    HEADER + len(layout.lanes) * LANE + FOOTER, layout.x(report.generated_at),
                    tuple(layout.lanes), tuple(layout.bars), tuple(markers),
                    tuple(_ticks(layout)), tuple(_labels(layout.bars, markers)))


def text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def _lane_top(y: float) -> int:
    return HEADER + int((y - HEADER) // LANE) * LANE


def _labels(bars: Sequence[Bar], markers: Sequence[Marker]) -> list[Label]:
    """Every bar's and marker's label, each in the first free row of its lane (or left off)."""
    wanted: list[tuple[int, str, float, str, str, str, tuple[str, ...]]] = []
    for bar in bars:
        if not bar.label:
            continue
        text = bar.label + (" →" if bar.open_end else "")
        inside = text_width(text) + 12 <= bar.width
        left = bar.x + 6 if inside else bar.x + bar.width + 8
        wanted.append((_lane_top(bar.y), bar.id, left, text,
                       "barlabel" if inside else "barlabel outside", "start",
                       (MIDDLE,) if inside else (MIDDLE, TOP, BOTTOM)))
    for marker in markers:
        if marker.kind == "verifiable-until":
            wanted.append((_lane_top(marker.y), marker.id, marker.x - 10, marker.label,
                           "untillabel", "end", (MIDDLE, TOP, BOTTOM)))
        else:
            wanted.append((_lane_top(marker.y), marker.id, marker.x + 9, marker.label,
                           "markerlabel", "start", (TOP, BOTTOM)))
    placed: dict[int, list[tuple[str, float, float]]] = {}
    out = []
    for lane, ident, x, text, css, anchor, rows in wanted:
        width = text_width(text)
        left, right = (x - width, x) if anchor == "end" else (x, x + width)
        taken = placed.setdefault(lane, [])
        for row in rows:
            if all(r not in _CLASH[row] or right + LABEL_GAP <= a or b + LABEL_GAP <= left
                   for r, a, b in taken):
                taken.append((row, left, right))
                out.append(Label(f"label-{ident}", round(x, 1), lane + _BASELINE[row], text,
                                 css, anchor))
                break
    return out


def _action_lane(action: Action) -> str:
    """Which lane an action's marker goes in: its certificate, key, CRL or image set."""
    if action.kind in (ActionKind.REISSUE, ActionKind.REVOKE):
        return action.subject
    if action.kind in (ActionKind.ROTATE, ActionKind.CERTIFY, ActionKind.RETIRE):
        return action.subject
    if action.kind == ActionKind.CRL_REFRESH:
        return "crl:" + action.subject
    return "set:" + action.image_set
