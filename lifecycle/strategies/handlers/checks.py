"""The pre-sign checks: a re-sign never blesses an image whose current signatures do not verify."""

from __future__ import annotations

from lifecycle.integrity.keys import KeySet, VerifierKey
from lifecycle.integrity.verify import Policy, VerifyOptions, verify_image
from lifecycle.inventory.inspect import is_signed
from lifecycle.store.ca_service import ROOT
from lifecycle.strategies.context import ApplyContext
from lifecycle.tlog.client import LogClient
from lifecycle.tlog.note import NoteVerifier
from lifecycle.verification.longterm import IdentityPolicy, LongTermTrust, verify_longterm


def _verify_with(path: str, verifiers: list[VerifierKey]) -> str:
    """'' when every signature of the image verifies with ``verifiers``, else why not."""
    report = verify_image(path, KeySet(dsse=verifiers), VerifyOptions(policy=Policy("all")))
    return "" if report.ok else report.failure_summary()


def _logged_for(ctx: ApplyContext, log: LogClient, path: str, identity: str
                ) -> tuple[set[str], str]:
    """(keyids of valid logged signatures naming ``identity``, why the image's signatures do
    not all verify or '').

    Every signature must verify through its log evidence (chain at the logged time, under the
    CA's root; inclusion under a checkpoint signed by the log's key); a signature without
    evidence cannot be judged here, so it counts as failing: never bless what is not checked.
    """
    if not is_signed(path):
        return set(), ""
    trust = LongTermTrust((ctx.ca.certificate(ROOT),),
                          (NoteVerifier.from_verifier_key(log.verifier_key()),),
                          IdentityPolicy(patterns=(".+",)), revocation_mode="soft-fail")
    report = verify_longterm(path, trust)
    failed = [r.error for r in report.results if not r.ok]
    problem = "; ".join(failed) or _verify_with(path, report.keys().dsse)
    if problem:
        return set(), problem
    return {r.keyid for r in report.results if r.identity == identity}, ""
