"""Who may sign the images of a managed set, as the store knows it: what ``scan`` checks signers against.

A key-based set (reissue, resign) is signed by its own keys, in any state (a retired or
compromised key's signature is the planner's business: drop and purge). An ephemeral set is
signed by fresh keys, so its known signers are the keyids the log-verified ephemeral signatures
of its identity left (the ``ephemeral-signed`` events). The keyids an image names are only a
hint: ``scan`` uses them to flag an image early, ``apply`` verifies before it signs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from lifecycle.config import Policies, Strategy
from lifecycle.inventory.fleet import logged_keyids
from lifecycle.inventory.models import SetKeyRecord
from lifecycle.store.models import KeyRecord


@dataclass(frozen=True)
class ExpectedSigners:
    image_set: str
    known: frozenset[str]
    """DSSE keyids and (upper-case) fingerprints of the set's keys, or, for an ephemeral set, the
    keyids of the signatures logged for its identity."""
    ephemeral: bool

    def foreign(self, signers: frozenset[str], previous: frozenset[str],
                seen_signed: bool) -> list[str]:
        """The signers of an image that are not the set's.

        A key-based set knows every key it may be signed by. An ephemeral set cannot tell a new
        ephemeral signature from a foreign one without verifying it, so only a signer that
        appeared on an image already seen signed counts (``apply`` judges new images).
        """
        unknown = {s for s in signers if s and s not in self.known and s.upper() not in self.known}
        if self.ephemeral:
            unknown = unknown - previous if seen_signed else set()
        return sorted(unknown)


Resolver = Callable[[str], ExpectedSigners | None]
"""Image path -> who may sign it (None: the path is in no managed set)."""


def expected_signers(conn: Connection, policies: Policies) -> Resolver:
    """Read every set's known signers once; the resolver then costs one glob match per image."""
    k = KeyRecord.__table__  # type: ignore[attr-defined]
    sk = SetKeyRecord.__table__  # type: ignore[attr-defined]
    keys: dict[str, set[str]] = {}
    for name, fingerprint, keyid in conn.execute(
            select(sk.c.image_set, k.c.fingerprint, k.c.dsse_keyid).join(k, k.c.id == sk.c.key_id)):
        keys.setdefault(name, set()).update(x for x in (fingerprint.upper(), keyid) if x)
    logged = logged_keyids(conn)
    by_set = {p.name: ExpectedSigners(
        p.name, frozenset(logged.get(p.identity, ()) if p.strategy is Strategy.EPHEMERAL
                          else keys.get(p.name, ())), p.strategy is Strategy.EPHEMERAL)
        for p in policies.image_sets}

    def resolve(path: str) -> ExpectedSigners | None:
        policy = policies.set_for(path)
        return None if policy is None else by_set[policy.name]

    return resolve
