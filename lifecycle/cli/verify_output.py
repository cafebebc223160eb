"""What ``verify`` prints for a result: the one renderer of the click command and the quick path.

Lines go out flushed one by one, as ``click.echo`` writes them, so both paths interleave stdout
and stderr alike.
"""

from __future__ import annotations

import json
from pathlib import Path

from lifecycle.cli.failure import err
from lifecycle.cli.progress import ProgressBar
from lifecycle.errors import VerificationError
from lifecycle.integrity.results import VerifyReport
from lifecycle.sif.format import type_name
from lifecycle.sif.image import SifImage
from lifecycle.verify import TrustMaterial, VerificationResult, verify


def out(line: str) -> None:
    """One line on stdout, flushed."""
    print(line, flush=True)


def verify_and_show(image: Path, trust: TrustMaterial, as_json: bool) -> None:
    """Verify one image and print its result, also when it fails (then re-raise the failure)."""
    try:
        with ProgressBar(image.stat().st_size, "hashing") as bar:
            result = verify(image, trust, bar)
    except VerificationError as exc:
        if exc.result is not None:
            show(exc.result, image, as_json)
        raise
    show(result, image, as_json)


def show(result: VerificationResult, image: Path, as_json: bool) -> None:
    for note in result.notes:
        err(note)
    for detail in result.details:  # quiet on success: --log-level info or --json shows them
        if result.ok:
            import logging  # only now: a verification without details never loads it

            logging.getLogger("lifecycle.verify").info(detail)
        else:
            err(detail)
    if as_json:
        out(json.dumps(result.to_dict(), indent=2))
        return
    facts = result.certificate
    if facts is not None:
        out(f"Certificate {facts.subject} (serial {facts.serial}) valid at "
                   f"{facts.validated_at.isoformat()} via {' <- '.join(facts.path[1:]) or 'root'}"
                   + (f" (proven signing time: {facts.time_source})" if facts.time_source else ""))
    for p in result.proven or ():
        if p.at is not None:
            out(f"Proven signing time of {p.keyid} (object {p.object_id}): "
                       f"{p.at.isoformat()}, {p.source}")
        else:
            out(f"Timestamps of {p.keyid} (object {p.object_id}) prove nothing, judged as "
                       f"untimestamped: {'; '.join(p.rejected) or p.source}")
    for r in result.longterm or ():
        if r.ok:
            out(f"Logged signature {r.keyid} (object {r.object_id}): {r.identity}, "
                       f"logged {r.logged_at.isoformat() if r.logged_at else '?'} as "
                       f"{r.log_origin} #{r.log_index} (checkpoint size {r.checkpoint_size})"
                       + (f"; {r.consistency}" if r.consistency else ""))
        else:
            out(f"Logged signature {r.keyid} (object {r.object_id}): FAILED: {r.error}")
    print_report(result.report, image)


def print_report(report: VerifyReport, image: Path) -> None:
    out(f"Verifying image: {image} (policy {report.policy})")
    for sig in report.signatures:
        state = "verified" if sig.ok else "FAILED"
        out(f"Signature object {sig.object_id} ({sig.format}, group {sig.group}): {state}")
        for signer in sig.signers:
            mark = "ok  " if signer.ok else "fail"
            who = f"{signer.signer}" + (f" <{signer.user_id}>" if signer.user_id else "")
            detail = f"key {signer.key}" if signer.ok else signer.error
            out(f"  [{mark}] {who}: {detail}")
        for error in sig.errors:
            out(f"  error: {error}")
    if not report.ok:
        return
    covered = sorted({i for s in report.signatures if s.ok for i in s.objects})
    out("Objects verified:")
    out(f"{'ID':<4}|{'GROUP':<8}|{'LINK':<8}|TYPE")
    out("-" * 48)
    with SifImage.open(image) as img:
        for object_id in covered:
            d = img.object(object_id)
            group = str(d.group) if d.group else "NONE"
            link = str(d.linked_object or d.linked_group or "NONE")
            out(f"{d.id:<4}|{group:<8}|{link:<8}|{type_name(d.data_type)}")
    out(f"Container verified: {image}")
