"""How many signatures a group needs: ``all`` (the reference), ``any``, or ``threshold:N``.

Pure data, cheap to import: trust material names a policy long before anything is verified.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from lifecycle.errors import LifecycleError


class PolicyMode(StrEnum):
    ALL = "all"
    ANY = "any"
    THRESHOLD = "threshold"


class Policy(NamedTuple):
    mode: PolicyMode = PolicyMode.ALL
    threshold: int = 1

    @classmethod
    def parse(cls, text: str) -> Policy:
        if text in (PolicyMode.ALL, PolicyMode.ANY):
            return cls(PolicyMode(text))
        match = re.fullmatch(r"threshold:([1-9][0-9]*)", text)
        if match:
            return cls(PolicyMode.THRESHOLD, int(match.group(1)))
        raise LifecycleError(
            f"unknown policy {text!r}", hint="use all, any or threshold:N (N distinct keys)"
        )

    def __str__(self) -> str:
        return f"threshold:{self.threshold}" if self.mode == PolicyMode.THRESHOLD else self.mode
