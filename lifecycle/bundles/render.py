"""The bundle's human-facing files, rendered with Jinja2 from templates shipped inside the package.

Templates live in ``lifecycle/templates`` and are loaded with :class:`jinja2.PackageLoader`, so an
installed wheel finds them exactly like a source checkout does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _environment() -> jinja2.Environment:
    # Plain-text outputs (README, TOML): HTML escaping would corrupt them.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lifecycle", "templates"),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=False,
        autoescape=False)  # noqa: S701


def render(name: str, **context: Any) -> bytes:
    return _environment().get_template(name).render(**context).encode()
