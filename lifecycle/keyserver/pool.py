"""The configured keyservers together: publish to every one, fetch from the first that has it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle.config import KeyserverSettings
from lifecycle.errors import KeyNotOnKeyserverError, KeyserverError, KeyserverUnavailableError
from lifecycle.keyserver.hkp import HkpClient, normalize_fingerprint


@dataclass(frozen=True)
class Fetched:
    """A key fetched by fingerprint, and from where."""

    fingerprint: str
    url: str
    key: Any


def clients(settings: KeyserverSettings, urls: Sequence[str] = ()) -> list[HkpClient]:
    """Clients for ``urls`` (default: the configured ones); KeyserverError when there are none."""
    chosen = tuple(urls) or settings.urls
    if not chosen:
        raise KeyserverError("no keyserver configured",
                             hint="set [keyserver] urls in the config or give --url")
    return [HkpClient.from_settings(url, settings) for url in chosen]


def push_all(servers: Sequence[HkpClient], armored: bytes) -> list[str]:
    """Publish to every keyserver; the URLs that took it. The first failure raises after the
    others were tried, so one keyserver down does not keep the key from the rest."""
    done: list[str] = []
    failures: list[KeyserverError] = []
    for server in servers:
        try:
            server.add(armored)
            done.append(server.url)
        except KeyserverError as exc:
            failures.append(exc)
    if failures:
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise KeyserverError(first.message + more, path=first.path, hint=first.hint)
    return done


def fetch(servers: Sequence[HkpClient], fingerprint: str) -> Fetched:
    """The key from the first keyserver that has it.

    A keyserver that does not answer is passed over for the next one; a bad answer (another
    key, garbage, a forged self-signature) is an error at once, never passed over.
    """
    fpr = normalize_fingerprint(fingerprint)
    down: list[KeyserverUnavailableError] = []
    for server in servers:
        try:
            key = server.get(fpr)
        except KeyserverUnavailableError as exc:
            down.append(exc)
            continue
        if key is not None:
            return Fetched(fpr, server.url, key)
    if down:
        raise down[0]
    where = ", ".join(s.url for s in servers)
    raise KeyNotOnKeyserverError(f"no key 0x{fpr} on {where}")
