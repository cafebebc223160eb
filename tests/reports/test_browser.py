"""The HTML report in headless Chromium: it renders without console errors, loads nothing from
outside, the timeline holds the fixture fleet's bars and markers, no two texts of the timeline
overlap (bounding boxes from the DOM) and every certificate's colour is its JSON status's."""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from lifecycle.model.cert_status import CertStatus
from lifecycle.reports import ReportData, render
from tests.conftest import require_tool
from tests.reports.conftest import ReportFleet

SVG = "{http://www.w3.org/2000/svg}"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-logging=stderr", "--v=0")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("chromium")
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def console_errors(stderr: str) -> list[str]:
    """Lines Chromium logs for page console messages and failed loads (dbus noise aside)."""
    return [line for line in stderr.splitlines()
            if re.search(r"CONSOLE|Uncaught|Failed to load resource|net::ERR_", line)]


PROBE = """<script>
const box = (el) => { const r = el.getBoundingClientRect();
  return {text: el.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
const legend = {};
for (const el of document.querySelectorAll('.legend span.status'))
  legend[el.dataset.status] = getComputedStyle(el, '::before').backgroundColor;
const out = {
  texts: [...document.querySelectorAll('.timeline svg')].map(
    (svg) => [...svg.querySelectorAll('text')].map(box)),
  certificates: [...document.querySelectorAll('#timeline rect[data-kind=certificate]')].map(
    (r) => ({id: r.id, fill: getComputedStyle(r).fill})),
  legend: legend};
const pre = document.createElement('pre'); pre.id = 'probe';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
</script>"""


def layout(tmp_path: Path, page: bytes) -> dict:  # type: ignore[type-arg]
    """Text boxes, certificate bar fills and legend colours, as Chromium laid the page out.

    The probe script goes into a copy: the report itself carries no script."""
    probed = tmp_path / "probed.html"
    probed.write_bytes(page.replace(b"</body>", PROBE.encode() + b"</body>"))
    dumped = chromium(tmp_path, "--window-size=1400,2000", "--dump-dom", probed.as_uri())
    assert console_errors(dumped.stderr) == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match is not None, "the probe did not run"
    found: dict = json.loads(html.unescape(match.group(1)))  # type: ignore[type-arg]
    return found


def overlaps(texts: list[dict]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """Pairs of texts whose boxes share more than half a pixel each way."""
    out = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if (min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
                    and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5):
                out.append((a["text"], b["text"]))
    return out


def check_layout(tmp_path: Path, page: bytes, report: dict) -> None:  # type: ignore[type-arg]
    """No overlapping text in the timeline; each certificate bar in its JSON status's colour."""
    found = layout(tmp_path, page)
    assert len(found["texts"]) == 2 and all(found["texts"])
    for texts in found["texts"]:
        assert overlaps(texts) == []
    legend = found["legend"]
    assert set(legend) == {s.value for s in CertStatus}
    assert len(set(legend.values())) == len(legend)  # the statuses are told apart
    status = {c["serial"]: c["status"] for c in report["certificates"]}
    assert found["certificates"]
    for bar in found["certificates"]:
        assert bar["fill"] == legend[status[bar["id"].removeprefix("cert-")]], bar


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_report_renders_in_chromium(report_fleet: ReportFleet, report_data: ReportData,
                                    tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_bytes(render(report_data, "html"))
    text = page.read_text()
    assert not re.search(r"""(?:src|href)\s*=|@import|url\(""", text)  # self-contained
    dumped = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert console_errors(dumped.stderr) == []
    # The DOM Chromium built: take the timeline SVG out and parse it as XML.
    match = re.search(r'<svg id="timeline".*?</svg>', dumped.stdout, re.S)
    assert match is not None, "the timeline did not survive parsing"
    svg = ElementTree.fromstring(match.group(0))
    rects = {r.get("id"): r for r in svg.iter(SVG + "rect") if r.get("id")}
    groups = {g.get("id"): g for g in svg.iter(SVG + "g") if g.get("id")}
    for cert in report_data.certificates:
        bar = rects[f"cert-{cert.serial}"]
        assert bar.get("data-kind") == "certificate"
        assert cert.status in (bar.get("class") or "")
        title = bar.find(SVG + "title")
        assert title is not None and cert.serial in (title.text or "")
    for key in report_data.keys:
        assert rects[f"key-{key.fingerprint}"].get("data-kind") == "key"
    for serial in report_fleet.reissued_serials.values():
        assert rects[f"renewal-{serial}"].get("data-kind") == "renewal"
    assert {"crl-root", "crl-intermediate"} <= set(rects)
    actions = {key: g for g in groups.values()
               for key in (g.get("data-actions") or "").split()}
    assert {a.key for a in report_data.actions} == set(actions)
    reissue = actions["reissue:" + report_fleet.reissued_serials["base"]]
    assert reissue.get("data-due") == "2027-06-03" and reissue.get("data-kind") == "reissue"
    assert groups["until-base"].get("data-kind") == "verifiable-until"
    assert groups["until-web"].get("data-kind") == "verifiable-until"
    assert sum(1 for t in svg.iter(SVG + "text") if t.text in {"2027", "2028"}) == 2
    # The tables made it too.
    for f in report_data.forecasts:
        assert f'data-path="{f.path}"' in dumped.stdout

    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, "--window-size=1400,2000", f"--screenshot={shot}",
                     "--hide-scrollbars", page.as_uri())
    assert console_errors(taken.stderr) == []
    assert png_size(shot) == (1400, 2000)
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few kB


@pytest.mark.slow
def test_no_label_overlaps_and_status_colours(report_data: ReportData, tmp_path: Path) -> None:
    check_layout(tmp_path, render(report_data, "html"), report_data.to_dict())


def test_the_overlap_check_sees_an_overlap() -> None:
    a = {"text": "a", "left": 0, "right": 10, "top": 0, "bottom": 10}
    assert overlaps([a, a | {"text": "b", "left": 9}]) == [("a", "b")]
    assert overlaps([a, a | {"text": "c", "left": 10, "right": 20}]) == []  # touching is fine


def test_console_errors_are_detected(tmp_path: Path) -> None:
    """The check above would see a broken page: a script error reaches the log we read."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFn()</script></body></html>")
    errors = console_errors(chromium(tmp_path, "--dump-dom", page.as_uri()).stderr)
    assert errors and "undefinedFn" in errors[0]
