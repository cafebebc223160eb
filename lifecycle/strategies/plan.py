"""The planner: a pure function from fleet state, policies and a time to the actions needed.

No I/O and no clock: the same inputs always give the same list, in the same order, so
``sif-lifecycle plan --at 2029-01-01`` shows exactly what the service would do then, and tests
run years of operation in seconds. Actions whose window has not opened yet are listed too (their
``not_before`` is in the future), so an operator sees what is coming.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from lifecycle.config import ImageSetPolicy, Policies, Strategy
from lifecycle.model.fleet import (
    LIVE,
    Action,
    ActionKind,
    CertInfo,
    FleetState,
    ImageState,
    KeyInfo,
    day,
    short,
)
from lifecycle.model.key_state import KeyState
from lifecycle.model.status import ImageStatus

TIDY_WINDOW = timedelta(days=7)
"""How long after the overlap ends dropping old signatures and retiring the key may take."""



def plan(state: FleetState, policies: Policies, now: datetime) -> list[Action]:
    """Every action the policies call for, ordered by when it may start (then kind, then key)."""
    if now.utcoffset() is None:
        raise ValueError("plan needs a timezone-aware time")
    certs: dict[str, list[CertInfo]] = {}
    for cert in state.certificates:
        certs.setdefault(cert.key_fingerprint, []).append(cert)
    images = _images_by_set(state.images, policies)
    out: list[Action] = []
    for policy in policies.image_sets:
        if policy.strategy is Strategy.EPHEMERAL:
            out += _ephemeral(policy, images.get(policy.name, ()), state.logged, now)
            continue
        keys = [key for key in state.keys if key.image_set == policy.name]
        out += _keys(policy, keys, certs, now)
        if policy.strategy is Strategy.RESIGN:
            out += _images(policy, keys, images.get(policy.name, ()), now,
                           _served_everywhere(state, policies))
        if policy.name in state.published and state.published[policy.name] != \
                state.trust_revision:
            out.append(Action(ActionKind.PUBLISH, policy.name, now, now,
                              f"the trust material of {policy.name} changed (revision "
                              f"{state.trust_revision}) and is not yet published",
                              policy.name, revision=state.trust_revision))
    out += _crls(state, policies, now)
    out += key_publications(state, policies, now)
    return sorted(out, key=Action.sort_key)


def _served_everywhere(state: FleetState, policies: Policies) -> frozenset[str] | None:
    """Fingerprints every configured keyserver holds (some version of); None: no keyservers."""
    urls = policies.keyservers.urls
    if not urls:
        return None
    held: dict[str, set[str]] = {}
    for fingerprint, _, url in state.key_publications:
        held.setdefault(fingerprint, set()).add(url)
    return frozenset(f for f, where in held.items() if where >= set(urls))


def key_publications(state: FleetState, policies: Policies, now: datetime) -> list[Action]:
    """A ``publish-pgp-key`` action for every PGP key of a configured set whose current version
    (its content digest: new self-signatures, bindings, revocations) some keyserver lacks.

    Due at once: an image signed with a key a keyserver does not serve fails stock ``verify``.
    Code that changes a PGP key needs to do nothing more; the next plan publishes it.
    """
    urls = policies.keyservers.urls
    if not urls:
        return []
    sets = {p.name for p in policies.image_sets}
    out = []
    for key in state.keys:
        digest = state.pgp_keys.get(key.fingerprint)
        if digest is None or key.image_set not in sets:
            continue
        missing = [url for url in urls
                   if (key.fingerprint, digest, url) not in state.key_publications]
        if missing:
            out.append(Action(ActionKind.PUBLISH_PGP_KEY, key.fingerprint, now, now,
                              f"PGP key {short(key.fingerprint)} ({key.state.value}) version "
                              f"{digest[:8]} is not yet on {', '.join(missing)}",
                              key.image_set or "", key.fingerprint, digest))
    return out


def due_now(actions: Sequence[Action], now: datetime) -> list[Action]:
    return [a for a in actions if a.ready(now)]


def notes(policies: Policies) -> list[str]:
    """Things an operator should know that are not actions."""
    return [f"image set {p.name} signs ephemerally as {p.identity} (certificates of "
            f"{int(p.ephemeral_lifetime.total_seconds() // 60)} minutes); verifiers need the "
            f"log's key and --identity {p.identity}"
            for p in policies.image_sets if p.strategy is Strategy.EPHEMERAL]


def _ephemeral(policy: ImageSetPolicy, images: Sequence[ImageState],
               logged: Mapping[str, frozenset[str]], now: datetime) -> Iterator[Action]:
    """Sign every present image that carries no ephemeral signature applied for the identity.

    The key names the signers the image has now, so an image rebuilt (or stripped) later is
    signed again. Tampered and removed images are never signed: the inventory took them out
    of ``present``. Apply re-checks with the full long-term verification.
    """
    mine = logged.get(policy.identity, frozenset())
    for image in images:
        if image.status != ImageStatus.PRESENT or image.signers & mine:
            continue
        signers = hashlib.sha256(",".join(sorted(image.signers)).encode()).hexdigest()[:12]
        why = ("is not signed" if not image.signers else
               f"carries {len(image.signers)} signature(s), none logged for {policy.identity}")
        yield Action(ActionKind.SIGN_EPHEMERAL, image.path, now, now,
                     f"{image.path} {why}; image set {policy.name} signs ephemerally as "
                     f"{policy.identity}", policy.name, revision=signers)


def _images_by_set(images: Sequence[ImageState], policies: Policies
                   ) -> dict[str, list[ImageState]]:
    out: dict[str, list[ImageState]] = {}
    for image in images:
        policy = policies.set_for(image.path)
        if policy is not None:
            out.setdefault(policy.name, []).append(image)
    return out


def _current(certs: Sequence[CertInfo], now: datetime) -> CertInfo | None:
    """The certificate to renew: the latest unrevoked, unsuperseded one not yet expired."""
    live = [c for c in certs if not c.revoked and not c.superseded and c.not_after > now]
    return max(live, key=lambda c: (c.not_after, c.serial), default=None)


def _keys(policy: ImageSetPolicy, keys: Sequence[KeyInfo], certs: dict[str, list[CertInfo]],
          now: datetime) -> Iterator[Action]:
    name = policy.name
    active = [key for key in keys if key.state == KeyState.ACTIVE]
    pending = [key for key in keys if key.state == KeyState.PENDING]
    if not active:
        yield Action(ActionKind.PROVISION, name, now, now,
                     f"image set {name} has no active signing key", name)
    for key in keys:
        if key.pgp:
            yield from _pgp_key(policy, key, now)
            continue
        if key.state == KeyState.COMPROMISED:
            for bad in certs.get(key.fingerprint, ()):
                if not bad.revoked and bad.not_after > now:
                    yield Action(ActionKind.REVOKE, bad.serial, now, now,
                                 f"key {short(key.fingerprint)} is compromised; its certificate "
                                 f"{short(bad.serial)} must be revoked", name,
                                 fingerprint=key.fingerprint)
        if key.state not in LIVE:
            continue
        cert = _current(certs.get(key.fingerprint, ()), now)
        end = _retire_at(policy, key)
        if cert is None and end is not None and end <= now:
            continue  # its overlap is over: it retires now and needs no new certificate
        if cert is None:
            yield Action(ActionKind.CERTIFY, key.fingerprint, now, now,
                         f"key {short(key.fingerprint)} has no valid certificate", name,
                         fingerprint=key.fingerprint,
                         revision=str(len(certs.get(key.fingerprint, ()))))
            continue
        if end is not None and end <= cert.not_after:
            continue  # the key retires before this certificate expires
        opens = policy.renewal_opens(cert.not_before, cert.not_after)
        due = cert.not_after - policy.distribution_lead
        lead = (f"; it must be published {policy.distribution_lead.days} days ahead"
                if policy.distribution_lead else "")
        yield Action(ActionKind.REISSUE, cert.serial, due, opens,
                     f"certificate {short(cert.serial)} expires {day(cert.not_after)}; "
                     f"renewal window opened {day(opens)}{lead}", name,
                     fingerprint=key.fingerprint)
    if policy.strategy is Strategy.RESIGN and active:
        current = max(active, key=lambda x: (x.activated_at or x.created_at, x.fingerprint))
        since = current.activated_at or current.created_at
        rotate_at = since + policy.key_rotation
        if policy.distribution_lead and not pending:
            prepare_at = rotate_at - policy.distribution_lead
            yield Action(ActionKind.PREPARE, name, rotate_at, prepare_at,
                         f"key {short(current.fingerprint)} rotates {day(rotate_at)}; its "
                         f"successor must be published {policy.distribution_lead.days} days "
                         "ahead", name, fingerprint=current.fingerprint)
        yield Action(ActionKind.ROTATE, current.fingerprint, rotate_at, rotate_at,
                     f"key {short(current.fingerprint)} has been active since {day(since)}; "
                     f"rotation every {policy.key_rotation.days} days", name,
                     fingerprint=current.fingerprint)


def _pgp_key(policy: ImageSetPolicy, key: KeyInfo, now: datetime) -> Iterator[Action]:
    """A PGP key has no certificate: its expiry is extended (reissue for PGP), and it is
    revoked when compromised (at once) or once retired (reason superseded).

    A retiring key is still extended: stock ``verify`` fails an image if any signature object
    linked to a group fails (spec 6.4), so the key must not lapse before its objects are
    dropped, however late that is."""
    name, fpr = policy.name, key.fingerprint
    if key.state in (KeyState.COMPROMISED, KeyState.RETIRED) and not key.pgp_revoked:
        compromised = key.state == KeyState.COMPROMISED
        reason = "compromised" if compromised else "superseded"
        why = ("is compromised; its revocation is published at once" if compromised else
               "is retired and no tracked image carries its signature")
        yield Action(ActionKind.REVOKE_PGP_KEY, fpr, now, now,
                     f"PGP key {short(fpr)} {why} (revocation reason {reason})", name,
                     fingerprint=fpr, revision=reason)
    if key.state not in LIVE or key.expires_at is None:
        return
    start = max(key.created_at, key.expires_at - policy.certificate_lifetime)
    opens = policy.renewal_opens(start, key.expires_at)
    lead = (f"; it must be published {policy.distribution_lead.days} days ahead"
            if policy.distribution_lead else "")
    yield Action(ActionKind.EXTEND, fpr, key.expires_at - policy.distribution_lead, opens,
                 f"PGP key {short(fpr)} expires {day(key.expires_at)}; extension window "
                 f"opened {day(opens)}{lead}", name, fingerprint=fpr,
                 revision=key.expires_at.astimezone(UTC).isoformat())


def _retire_at(policy: ImageSetPolicy, key: KeyInfo) -> datetime | None:
    if key.state != KeyState.RETIRING or key.retiring_at is None:
        return None
    return key.retiring_at + policy.overlap


def _images(policy: ImageSetPolicy, keys: Sequence[KeyInfo], images: Sequence[ImageState],
            now: datetime, served: frozenset[str] | None = None) -> Iterator[Action]:
    """Re-sign, purge, drop, retire. With keyservers, an image gets a PGP key's signature only
    once every keyserver serves that key (``served``): stock ``verify`` fetches the signer's
    key from them, so signing first would break the image until the key arrives."""
    name = policy.name
    active = [key for key in keys if key.state == KeyState.ACTIVE]
    retiring = [key for key in keys if key.state == KeyState.RETIRING]
    compromised = [key for key in keys if key.state == KeyState.COMPROMISED]
    current = max(active, key=lambda x: (x.activated_at or x.created_at, x.fingerprint),
                  default=None)
    present = [image for image in images if image.status == ImageStatus.PRESENT and image.signers]
    waiting = current is not None and current.pgp and served is not None \
        and current.fingerprint not in served
    if waiting:
        current = None  # its publish-pgp-key action comes first; signing waits for it
    if current is not None:
        since = current.activated_at or current.created_at
        due = since + policy.overlap
        why = (f" lacks a signature by the active key {short(current.fingerprint)} (active since "
               f"{day(since)}; old signatures are dropped from {day(due)})")
        for image in present:
            if current.signer_id not in image.signers:
                yield Action(ActionKind.RESIGN, image.path, due, since, image.path + why, name,
                             current.fingerprint)
    for key in compromised if not waiting else ():
        for image in present:
            if key.signer_id in image.signers:
                yield Action(ActionKind.PURGE, image.path, now, now,
                             f"{image.path} carries a signature by the compromised key "
                             f"{short(key.fingerprint)}", name, key.fingerprint)
    for key in retiring:
        drop_at = _retire_at(policy, key)
        assert drop_at is not None
        carrying = [image for image in present if key.signer_id in image.signers]
        for image in carrying:
            if current is None or current.signer_id not in image.signers:
                continue  # never drop the last valid signature: re-signing comes first
            yield Action(ActionKind.DROP, image.path, drop_at + TIDY_WINDOW, drop_at,
                         f"the overlap of retiring key {short(key.fingerprint)} ends "
                         f"{day(drop_at)}; {image.path} is also signed by "
                         f"{short(current.fingerprint)}", name, key.fingerprint)
        if not carrying:
            yield Action(ActionKind.RETIRE, key.fingerprint, drop_at + TIDY_WINDOW, drop_at,
                         f"key {short(key.fingerprint)} has been retiring since "
                         f"{day(key.retiring_at or drop_at)} and no tracked image carries its "
                         "signature any more", name, key.fingerprint)


def _crls(state: FleetState, policies: Policies, now: datetime) -> Iterator[Action]:
    if not policies.image_sets:
        return
    lead = policies.distribution_lead
    for crl in state.crls:
        half = crl.this_update + (crl.next_update - crl.this_update) / 2
        yield Action(ActionKind.CRL_REFRESH, crl.role, max(half, crl.next_update - lead), half,
                     f"the {crl.role} CRL #{crl.number} expires {day(crl.next_update)}; "
                     f"refresh opened {day(half)}", revision=str(crl.number))
