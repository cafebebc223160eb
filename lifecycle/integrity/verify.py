"""Verify a SIF image's signatures with the reference's rules (spec 6) and an explicit policy.

Signature objects are small and parsed first; then every digest any of them needs is computed in
one pass over the image data; then each signature is checked and the policy decides. The default
policy ``all`` is the reference's behaviour: every signature linked to a verified group must
verify. ``any`` needs one good signature per group; ``threshold:N`` needs N distinct supplied
keys (by key material, not files) to have signed each group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from lifecycle.errors import LifecycleError, SignatureFormatError
from lifecycle.integrity import digest, dsse, metadata
from lifecycle.integrity.keys import KeySet
from lifecycle.integrity.policy import Policy as Policy
from lifecycle.integrity.policy import PolicyMode
from lifecycle.integrity.results import (
    SignatureFormat,
    SignatureResult,
    SignerResult,
    TaskResult,
    VerifyReport,
)
from lifecycle.sif.format import Descriptor
from lifecycle.sif.image import SifImage

if TYPE_CHECKING:
    from datetime import datetime

    from lifecycle.integrity.pgp import ClearSigned

LEGACY_PREFIX = b"SIFHASH:\n"


class VerifyOptions(NamedTuple):
    groups: Sequence[int] = ()
    object_ids: Sequence[int] = ()
    all_objects: bool = False
    """Legacy mode: check every grouped object (reference ``--all``)."""
    legacy: bool = False
    policy: Policy = Policy()
    at: datetime | None = None
    """Time at which PGP key expiry/revocation is judged (default: now)."""


class _Task:
    """A group (or one object of it) to verify, and the signature objects that apply."""

    __slots__ = ("group", "object_id", "signatures")

    def __init__(self, group: int, object_id: int | None, signatures: list[Descriptor]) -> None:
        self.group = group
        self.object_id = object_id
        self.signatures = signatures


class _Parsed:
    """One signature object while it is being checked; frozen into a SignatureResult at the end."""

    __slots__ = ("errors", "format", "group", "legacy_digest", "metadata", "object_id", "objects",
                 "signers")  # fmt: skip

    def __init__(self, object_id: int, group: int) -> None:
        self.object_id = object_id
        self.group = group
        self.format = SignatureFormat.UNKNOWN
        self.signers: list[SignerResult] = []
        self.objects: set[int] = set()
        self.errors: list[str] = []
        self.metadata: metadata.ImageMetadata | None = None
        self.legacy_digest: tuple[str, bytes] | None = None

    def freeze(self) -> SignatureResult:
        return SignatureResult(self.object_id, self.group, self.format, tuple(self.signers),
                               tuple(sorted(self.objects)), tuple(self.errors))


def verify_image(
    path: str, keys: KeySet, options: VerifyOptions, progress: digest.Progress | None = None
) -> VerifyReport:
    with SifImage.open(path) as image:
        errors = _preconditions(image)
        if errors:
            return VerifyReport(str(path), str(options.policy), errors=tuple(errors))
        tasks = _tasks(image, options)
        parsed: dict[int, _Parsed] = {}
        for task in tasks:
            for desc in task.signatures:
                if desc.id not in parsed:
                    parsed[desc.id] = _parse(image, desc, keys, options)
        request = digest.DigestRequest()
        for task in tasks:
            for desc in task.signatures:
                _request(image, parsed[desc.id], task, request)
        digests = digest.compute(image, request, progress)
        for task in tasks:
            for desc in task.signatures:
                _check(image, parsed[desc.id], task, digests)
        results = {object_id: p.freeze() for object_id, p in parsed.items()}
        decided = tuple(_decide(task, results, options.policy) for task in tasks)
    ok = bool(decided) and all(t.ok for t in decided)
    return VerifyReport(str(path), str(options.policy), ok, (), decided, tuple(results.values()))


def _preconditions(image: SifImage) -> list[str]:
    objects = image.objects
    if not objects:
        return ["no objects in image"]
    loose = [d.id for d in objects if not d.is_signature and not d.group]
    if loose:
        return [f"non-signature object {i} not associated with object group" for i in loose]
    if not image.groups():
        return ["no groups found"]
    return []


def _is_legacy(image: SifImage, desc: Descriptor) -> bool:
    try:
        data = image.read_signature(desc)
        return not dsse.is_dsse(data) and _pgp_decode(data).text.startswith(LEGACY_PREFIX)
    except SignatureFormatError:
        return False


def _tasks(image: SifImage, options: VerifyOptions) -> list[_Task]:
    """Which groups/objects to check and which signature objects apply (spec 6.1, 6.3a, 6.6)."""
    groups = image.groups()
    for g in options.groups:
        if g not in groups:
            raise LifecycleError(f"group {g} not found", path=image.path)
    object_tasks = [(image.object(i).group, i) for i in sorted(set(options.object_ids))]
    for group, object_id in object_tasks:
        if not group:
            raise LifecycleError(f"object {object_id} is in no group", path=image.path)
    sigs = [d for d in image.objects if d.is_signature]
    if options.legacy:
        legacy = [d for d in sigs if _is_legacy(image, d)]
        if options.groups:
            return [
                _Task(g, None, [d for d in legacy if d.linked_group == g])
                for g in sorted(set(options.groups))
            ]
        if not object_tasks:
            targets = [d for d in image.objects if d.group and not d.is_signature]
            if not options.all_objects:
                targets = [d for d in targets if d.is_primary_partition]
                if not targets:
                    raise LifecycleError("no primary partition found", path=image.path)
            object_tasks = [(d.group, d.id) for d in targets]
        return [_Task(g, i, [d for d in legacy if d.linked_object == i]) for g, i in object_tasks]
    current = [d for d in sigs if d.linked_group and not _is_legacy(image, d)]
    tasks = [_Task(g, None, []) for g in sorted(set(options.groups))]
    tasks += [_Task(g, i, []) for g, i in object_tasks]
    if not tasks:
        tasks = [_Task(g, None, []) for g in groups]
    for task in tasks:
        task.signatures = [d for d in current if d.linked_group == task.group]
    return tasks


def _parse(image: SifImage, desc: Descriptor, keys: KeySet, options: VerifyOptions) -> _Parsed:
    """Detect the format, check the cryptography and parse the signed message (6.3 b-c)."""
    result = parsed = _Parsed(desc.id, desc.linked_group or desc.group)
    try:
        data = image.read_signature(desc)
        signed = None if dsse.is_dsse(data) else _pgp_decode(data)
        if signed is None:
            result.format = SignatureFormat.DSSE
        elif signed.text.startswith(LEGACY_PREFIX):
            result.format = SignatureFormat.LEGACY
        else:
            result.format = SignatureFormat.PGP
        # Only once the format is known, as the reference does (6.3 b, then c).
        hash_name = digest.descriptor_hash_name(desc.signature_hash_type)
        if signed is None:
            message = _verify_dsse(data, keys, result)
        else:
            message = _verify_pgp(signed, desc, keys, options, result)
        if result.format == SignatureFormat.LEGACY and message is not None:
            hex_digest = message[len(LEGACY_PREFIX) :].removesuffix(b"\n")
            parsed.legacy_digest = (hash_name, bytes.fromhex(hex_digest.decode("ascii")))
        elif message is not None:
            parsed.metadata = metadata.ImageMetadata.from_json(message)
    except SignatureFormatError as exc:
        if result.format == SignatureFormat.UNKNOWN:
            result.errors.append("signature format not recognized")
        else:
            result.errors.append(f"signature object {desc.id} not valid: {exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        result.errors.append(f"signature object {desc.id} not valid: {exc}")
    return parsed


def _pgp_decode(data: bytes) -> ClearSigned:
    from lifecycle.integrity import pgp  # the PGP parser: not for an image signed with DSSE only

    return pgp.decode(data)


def _verify_dsse(data: bytes, keys: KeySet, result: _Parsed) -> bytes | None:
    """Check each signature of the envelope against the supplied keys.

    Which key verified is recorded by its key material, so a duplicated signature entry or the
    same key supplied twice (another file, a certificate of it) still counts as one signer.
    """
    if not keys.dsse:
        result.errors.append("key material not provided for DSSE envelope signature")
        return None
    envelope = dsse.parse_envelope(data)
    message = envelope.pae()
    for sig in envelope.signatures:
        outcome = SignerResult(sig.keyid, False, error="no supplied key matches this keyid")
        for key in keys.dsse:
            if sig.keyid and key.keyid and sig.keyid != key.keyid:
                continue
            if dsse.verify_pae(key.key, sig.sig, message):
                outcome = SignerResult(sig.keyid or key.keyid, True, key.label,
                                       key_fingerprint=key.fingerprint)
                break
            outcome = SignerResult(sig.keyid, False,
                                   error=f"signature does not verify with {key.label}")
        result.signers.append(outcome)
    if not any(s.ok for s in result.signers):
        result.errors.append("no signature in the envelope verifies with the supplied keys")
    return envelope.payload


def _verify_pgp(
    signed: ClearSigned,
    desc: Descriptor,
    keys: KeySet,
    options: VerifyOptions,
    result: _Parsed,
) -> bytes | None:
    if not keys.pgp:
        result.errors.append("key material not provided for PGP clear-sign signature")
        return None
    from lifecycle.integrity import pgp

    check = pgp.verify(signed, keys.pgp, options.at)
    signer = check.fingerprint or check.issuer
    label = keys.label_for_fingerprint(check.fingerprint) if check.ok else None
    result.signers.append(SignerResult(signer, check.ok, label, check.error, check.user_id,
                                       check.fingerprint if check.ok else ""))
    if not check.ok:
        result.errors.append(f"signature object {desc.id} not valid: {check.error}")
        return None
    if desc.signature_entity != bytes.fromhex(check.fingerprint)[:20]:
        result.errors.append("fingerprint in descriptor does not correspond to signing entity")
    return signed.text


def _request(image: SifImage, parsed: _Parsed, task: _Task, request: digest.DigestRequest) -> None:
    if parsed.metadata is not None:
        metadata.request_for(image, parsed.metadata, task.group, request)
    elif parsed.legacy_digest is not None:
        name = parsed.legacy_digest[0]
        if task.object_id is None:
            request.want_group(task.group, name)
        else:
            request.want_object(task.object_id, name)


def _check(image: SifImage, parsed: _Parsed, task: _Task, digests: digest.DigestResults) -> None:
    result = parsed
    if parsed.metadata is not None:
        outcome = metadata.check(image, parsed.metadata, task.group, digests, task.object_id)
        errors, covered = outcome.errors, outcome.covered
    elif parsed.legacy_digest is not None:
        name, expected = parsed.legacy_digest
        if task.object_id is None:
            actual = digests.group(task.group, name)
            covered = [d.id for d in image.group_objects(task.group)]
        else:
            actual = digests.object(task.object_id, name)
            covered = [task.object_id]
        errors = [] if actual == expected else [f"legacy digest mismatch for {covered}"]
        covered = covered if not errors else []
    else:
        return
    result.errors += [e for e in errors if e not in result.errors]
    result.objects |= set(covered)


def _decide(task: _Task, parsed: dict[int, SignatureResult], policy: Policy) -> TaskResult:
    results = [parsed[d.id] for d in task.signatures]
    what = f"object {task.object_id}" if task.object_id is not None else f"object group {task.group}"
    ids = tuple(r.object_id for r in results)
    if not results:
        return TaskResult(task.group, task.object_id, False, f"signature not found for {what}", ids)
    good = [r for r in results if r.ok]
    reason = ""
    if policy.mode == PolicyMode.ALL:
        ok = len(good) == len(results)
        bad = next((r for r in results if not r.ok), None)
        if bad is not None:
            reason = f"{what}: signature object {bad.object_id}: {'; '.join(bad.errors)}"
    elif policy.mode == PolicyMode.ANY:
        ok = bool(good)
        if not good:
            reason = f"{what}: no signature verifies"
    else:
        signers = set().union(*(r.verified_keys() for r in good))
        ok = len(signers) >= policy.threshold
        if not ok:
            reason = f"{what}: {len(signers)} of the required {policy.threshold} distinct keys signed"
    return TaskResult(task.group, task.object_id, ok, reason, ids)
