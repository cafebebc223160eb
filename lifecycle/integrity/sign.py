"""Sign SIF images as ``singularity sign`` does, keeping every group verifiable by stock tools.

Signing a group that already carries a DSSE envelope adds the new signature *into* that envelope
instead of adding a second signature object: a second object by another key would make stock
``verify --key`` fail (spec 6.4). Before an existing signature is merged into or replaced, its
signed metadata must still match the image; otherwise signing would bless changed content, so it
is refused. ``separate_object`` restores the reference's behaviour (always a new object).

All decisions are made, and all image data hashed in one pass, before the first byte is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lifecycle.clock import utc_now
from lifecycle.errors import ObjectNotFoundError, SignatureFormatError, SigningError
from lifecycle.integrity import digest, dsse, metadata, pgp
from lifecycle.integrity.dsse import SigningKey
from lifecycle.integrity.keys import PgpSigningKey
from lifecycle.sif.format import GROUP_FLAG, ZERO_TIME, DataType, Descriptor, HashType
from lifecycle.sif.format import signature_extra as make_signature_extra
from lifecycle.sif.image import ObjectSpec, SifImage

Attest = Callable[[bytes, dsse.Signature], dsse.Extension]
"""Given the PAE and a fresh signature, the extension to store with it (e.g. a log entry)."""


@dataclass(frozen=True)
class DsseSigner:
    """One or more PEM keys; all their signatures go into the group's single envelope."""

    keys: tuple[SigningKey, ...]
    extension: dsse.Extension | None = None
    attest: Attest | None = None
    """Evidence that needs the signature itself (a transparency log entry) cannot be known
    before signing; this is called after each signature is made and before anything is
    written, so the envelope with its evidence still goes into the image in one write."""

    @property
    def identity(self) -> str:
        return ",".join(dsse.keyid(k.public_key()) for k in self.keys)


@dataclass(frozen=True)
class PgpSigner:
    key: PgpSigningKey

    @property
    def identity(self) -> str:
        return self.key.fingerprint


Signer = DsseSigner | PgpSigner


@dataclass
class SignOptions:
    groups: list[int] = field(default_factory=list)
    object_ids: list[int] = field(default_factory=list)
    deterministic: bool = False
    """Record the reference's zero time in descriptors and header, as its deterministic mode."""
    signing_time: datetime | None = None
    """Creation time inside PGP signature packets (default: now)."""
    separate_object: bool = False
    """Reference behaviour: always add a new signature object, never merge."""


@dataclass
class SignedGroup:
    group: int
    object_id: int
    objects: list[int]
    action: str
    """``added`` (new signature object), ``merged`` (into the group's envelope), ``replaced``."""
    signer: str


@dataclass
class _Existing:
    desc: Descriptor
    format: str
    metadata: metadata.ImageMetadata | None = None
    envelope: dsse.Envelope | None = None
    entity: bytes = b""


@dataclass
class _Plan:
    group: int
    ids: list[int]
    existing: list[_Existing]


def selections(image: SifImage, options: SignOptions) -> list[tuple[int, list[int]]]:
    """(group, object IDs) per signature to make, as the reference selects them (spec 3.3)."""
    groups = image.groups()
    chosen: list[tuple[int, list[int]]] = []
    for g in sorted(set(options.groups)):
        if g not in groups:
            raise ObjectNotFoundError(f"no objects in group {g}", path=image.path)
        chosen.append((g, [d.id for d in image.group_objects(g)]))
    buckets: dict[int, list[int]] = {}
    for object_id in sorted(set(options.object_ids)):
        desc = image.object(object_id)
        if not desc.group:
            raise SigningError(f"object {object_id} is in no group and cannot be signed")
        buckets.setdefault(desc.group, []).append(object_id)
    chosen += sorted(buckets.items())
    if not chosen:
        if not groups:
            raise SigningError("image has no grouped objects to sign", path=image.path)
        chosen = [(g, [d.id for d in image.group_objects(g)]) for g in groups]
    return chosen


def _classify(image: SifImage, desc: Descriptor) -> _Existing:
    try:
        data = image.read_signature(desc)
        if dsse.is_dsse(data):
            envelope = dsse.parse_envelope(data)
            return _Existing(
                desc, "dsse", metadata.ImageMetadata.from_json(envelope.payload), envelope
            )
        text = pgp.decode(data).text
        if text.startswith(b"SIFHASH:\n"):
            return _Existing(desc, "legacy")
        return _Existing(
            desc, "pgp", metadata.ImageMetadata.from_json(text), entity=desc.signature_entity
        )
    except SignatureFormatError:
        return _Existing(desc, "unknown")


def _stale(
    image: SifImage, existing: _Existing, group: int, ids: list[int], digests: digest.DigestResults
) -> str:
    """Why ``existing`` does not sign exactly ``ids`` as they are now ('' when it does)."""
    assert existing.metadata is not None
    listed = set(metadata.absolute_ids(image, existing.metadata, group))
    if listed != set(ids):
        return f"it covers objects {sorted(listed)}, not {sorted(ids)}"
    errors: list[str] = []
    for object_id in ids:
        errors += metadata.check(image, existing.metadata, group, digests, object_id).errors
    return "; ".join(dict.fromkeys(errors))


def sign_image(
    path: str, signer: Signer, options: SignOptions, progress: digest.Progress | None = None
) -> list[SignedGroup]:
    with SifImage.open(path, writable=True) as image:
        image.require_writable_layout(end=image.data_end())  # before hashing gigabytes
        plans = [
            _Plan(g, ids, [_classify(image, d) for d in image.signatures_for_group(g)])
            for g, ids in selections(image, options)
        ]
        request = digest.DigestRequest()
        for plan in plans:
            for object_id in plan.ids:
                request.want_object(object_id, "sha256")
            for existing in plan.existing:
                if existing.metadata is not None:
                    metadata.request_for(image, existing.metadata, plan.group, request)
        digests = digest.compute(image, request, progress)
        writes = [_decide(image, plan, signer, options, digests) for plan in plans]
        when = ZERO_TIME if options.deterministic else None
        done = []
        for plan, (data, replaces, action) in zip(plans, writes, strict=True):
            spec = ObjectSpec(
                DataType.SIGNATURE,
                data,
                group=0,
                linked_raw=GROUP_FLAG | plan.group,
                extra=make_signature_extra(
                    HashType.SHA256,
                    bytes.fromhex(signer.identity) if isinstance(signer, PgpSigner) else b"",
                ),
            )
            if replaces:
                new = image.replace(replaces[0], spec, when=when)
                if replaces[1:]:
                    image.delete([d.id for d in replaces[1:]], when=when)
            else:
                new = image.add(spec, when=when)
            done.append(SignedGroup(plan.group, new.id, plan.ids, action, signer.identity))
        return done


def _decide(
    image: SifImage,
    plan: _Plan,
    signer: Signer,
    options: SignOptions,
    digests: digest.DigestResults,
) -> tuple[bytes, list[Descriptor], str]:
    """The new object's bytes, the objects it replaces, and what was done."""
    fresh = metadata.build(image, plan.ids, digests).to_json()
    own_format = "dsse" if isinstance(signer, DsseSigner) else "pgp"
    if options.separate_object:
        return _make(signer, fresh, None, options), [], "added"
    for existing in plan.existing:
        if existing.format in ("legacy",) or existing.format == own_format:
            continue
        kind = "an unrecognised" if existing.format == "unknown" else f"a {existing.format}"
        raise SigningError(
            f"group {plan.group} already carries {kind} signature (object {existing.desc.id}); "
            f"a {own_format} signature object beside it would make stock `singularity verify` "
            "fail for every key",
            path=image.path,
            hint=f"delete object {existing.desc.id} first, or pass --separate-object to do it anyway",
        )
    mine = [e for e in plan.existing if e.format == own_format]
    for existing in mine:
        reason = _stale(image, existing, plan.group, plan.ids, digests)
        if reason:
            raise SigningError(
                f"group {plan.group}: signature object {existing.desc.id} no longer matches the "
                f"image ({reason}); signing now would bless changed content",
                path=image.path,
                hint="verify the image; pass --separate-object to sign anyway",
            )
    if own_format == "pgp":
        same = [e.desc for e in mine if e.entity == bytes.fromhex(signer.identity)[:20]]
        return _make(signer, fresh, None, options), same[:1], "replaced" if same else "added"
    envelopes = [e.envelope for e in mine if e.envelope is not None]
    if not envelopes:
        return _make(signer, fresh, None, options), [], "added"
    seen: set[str] = set()
    kept = []
    for env in envelopes:
        for sig in env.signatures:
            if sig.keyid not in seen or not sig.keyid:
                seen.add(sig.keyid)
                kept.append(sig)
    merged = dsse.Envelope(envelopes[0].payload, tuple(kept))
    return _make(signer, merged.payload, merged, options), [e.desc for e in mine], "merged"


def _make(
    signer: Signer, payload: bytes, envelope: dsse.Envelope | None, options: SignOptions
) -> bytes:
    if isinstance(signer, DsseSigner):
        signed = envelope if envelope is not None else dsse.Envelope(payload)
        for key in signer.keys:
            signed = signed.signed_by(key, signer.extension)
            if signer.attest is not None:
                fresh = signed.signatures[-1]
                extension = signer.attest(signed.pae(), fresh)
                attested = fresh._replace(extension=extension)
                signed = signed._replace(signatures=(*signed.signatures[:-1], attested))
        return signed.to_bytes()
    created = options.signing_time or utc_now()
    return signer.key.sign(payload, created)


@dataclass
class RemovedSignatures:
    group: int
    old_object_id: int
    new_object_id: int
    removed: list[str]
    """DSSE keyids whose signatures were dropped."""
    kept: list[str]


def remove_signatures(path: str, keyids: set[str]) -> list[RemovedSignatures]:
    """Drop the signatures by ``keyids`` from every DSSE envelope of the image.

    Each envelope is rewritten with :meth:`SifImage.replace` (the new object is complete before
    the old one is freed), so a crash at any point leaves an image that verifies with every kept
    key. An envelope whose every signature would go is refused: an empty envelope is invalid and
    the group would be left unsigned. Whether the kept signatures verify is for the caller to
    check (it holds the trusted keys); nothing here can bless content, it only removes.
    """
    done: list[RemovedSignatures] = []
    with SifImage.open(path, writable=True) as image:
        changes = []
        for desc in [d for d in image.objects if d.is_signature]:
            existing = _classify(image, desc)
            if existing.envelope is None:
                continue
            drop = [s.keyid for s in existing.envelope.signatures if s.keyid in keyids]
            if not drop:
                continue
            slimmer = existing.envelope.without(keyids)
            if not slimmer.signatures:
                raise SigningError(
                    f"signature object {desc.id} holds only signatures by {', '.join(drop)}; "
                    "removing them would leave group "
                    f"{desc.linked_group} unsigned", path=path,
                    hint="sign the image with a current key first")
            changes.append((desc, slimmer, drop))
        for desc, slimmer, drop in changes:
            spec = ObjectSpec(DataType.SIGNATURE, slimmer.to_bytes(), group=0,
                              linked_raw=desc.linked_raw, extra=desc.extra)
            new = image.replace(desc, spec)
            done.append(RemovedSignatures(desc.linked_group or 0, desc.id, new.id, drop,
                                          [s.keyid for s in slimmer.signatures]))
    return done
