"""Publishing PGP public keys to the configured HKP keyservers (``publish-pgp-key``).

:func:`publish_key` pushes a key's current armored public key (with its latest self-signatures,
binding signatures and revocations) to every keyserver that does not hold that version yet and
records each success (:mod:`lifecycle.store.key_publications`). A keyserver that is down makes it
fail after the others were tried, so the work queue retries it with backoff and the planner keeps
it pending; code that must publish before it goes on (a rotation publishes the new key first)
calls it directly and stops on the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lifecycle.config import KeyserverSettings
from lifecycle.errors import ActionError, KeyserverError
from lifecycle.keyserver.hkp import HkpClient
from lifecycle.model.fleet import Action, ActionKind, short
from lifecycle.pki.pgp import pgp_content_digest, pgp_public_armor
from lifecycle.store.key_publications import published_versions, record_publication
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.context import ApplyContext, Handler, NothingToDoError


@dataclass(frozen=True)
class Published:
    fingerprint: str
    digest: str
    pushed: tuple[str, ...]
    """Keyservers that took it now."""
    already: tuple[str, ...]
    """Keyservers that held this version before."""


def publish_key(keys: KeyService, fingerprint: str, settings: KeyserverSettings,
                now: datetime, urls: Sequence[str] = ()) -> Published:
    """Push the key's current version to ``urls`` (default: the configured keyservers).

    Raises KeyserverError naming the first keyserver that failed, after trying all of them and
    recording those that took it.
    """
    chosen = tuple(urls) or settings.urls
    if not chosen:
        raise KeyserverError("no keyserver configured",
                             hint="set [keyserver] urls in the config or give --url")
    row = keys.get(fingerprint)
    if row.kind != "pgp":
        raise ActionError(f"key {row.fingerprint} is a {row.kind} key; only PGP keys go to a "
                          "keyserver")
    key = keys.pgp_key(row)
    armored, digest = pgp_public_armor(key), pgp_content_digest(key)
    held = published_versions(keys.engine)
    already = tuple(u for u in chosen if (row.fingerprint, digest, u) in held)
    pushed: list[str] = []
    failures: list[KeyserverError] = []
    for url in chosen:
        if url in already:
            continue
        try:
            HkpClient.from_settings(url, settings).add(armored)
        except KeyserverError as exc:
            failures.append(exc)
            continue
        record_publication(keys.engine, now, row.fingerprint, digest, url)
        pushed.append(url)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        done = f"; published to {', '.join(pushed)}" if pushed else ""
        first = failures[0]
        raise KeyserverError(first.message + more + done, path=first.path, hint=first.hint)
    return Published(row.fingerprint, digest, tuple(pushed), already)


def _publish_pgp_key(action: Action, ctx: ApplyContext, now: datetime) -> str:
    settings = ctx.policies.keyservers
    result = publish_key(ctx.ca.keys, action.fingerprint or action.subject, settings, now)
    if not result.pushed:
        raise NothingToDoError(f"every keyserver holds version {result.digest[:8]} of "
                               f"{short(result.fingerprint)}")
    return (f"published PGP key {result.fingerprint} version {result.digest[:8]} to "
            f"{', '.join(result.pushed)}")


HANDLERS: dict[ActionKind, Handler] = {ActionKind.PUBLISH_PGP_KEY: _publish_pgp_key}
