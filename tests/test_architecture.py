"""The typed core stays typed: no state, status, kind, strategy or role is compared as a bare
string outside the module that defines its enum."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lifecycle.config import Strategy
from lifecycle.model.fleet import ActionKind, ApplyStatus
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageEvent, ImageStatus
from lifecycle.service.conditions import RuleName, Severity
from lifecycle.service.scheduler import JobId
from lifecycle.store.notifications import NotifyState
from lifecycle.store.queue import WorkState

REPO = Path(__file__).resolve().parents[1]
ENUMS = (Strategy, ActionKind, ApplyStatus, KeyState, CaRole, ImageStatus, ImageEvent, WorkState,
         JobId, RuleName, Severity, NotifyState)
DEFINED_IN = {Path(sys.modules[e.__module__].__file__ or "").resolve() for e in ENUMS}


def test_no_bare_enum_value_is_compared_outside_its_enum_module() -> None:
    values = sorted({m.value for e in ENUMS for m in e}, key=len, reverse=True)
    literal = "|".join(re.escape(v) for v in values)
    compared = re.compile(rf"""(==|!=|\bin\b|\bis\b)\s*\(?\s*["']({literal})["']"""
                          rf"""|["']({literal})["']\s*(==|!=)""")
    found = []
    for path in sorted((REPO / "lifecycle").rglob("*.py")):
        if path.resolve() in DEFINED_IN:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if compared.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []

