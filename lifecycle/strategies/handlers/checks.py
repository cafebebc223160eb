"""The pre-sign checks: a re-sign never blesses an image whose current signatures do not verify."""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.errors import VerificationError
from lifecycle.integrity.keys import VerifierKey
from lifecycle.inventory.inspect import is_signed
from lifecycle.store.ca_service import ROOT
from lifecycle.strategies.context import ApplyContext
from lifecycle.tlog.client import LogClient
from lifecycle.tlog.note import NoteVerifier
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, verify


def _verify_with(path: str, verifiers: Sequence[VerifierKey | bytes]) -> str:
    """'' when every signature of the image verifies with ``verifiers`` (PEM public keys, or
    armored PGP public keys), else why not."""
    pem = tuple(v for v in verifiers if isinstance(v, VerifierKey))
    armored = b"".join(v for v in verifiers if isinstance(v, bytes))
    try:
        verify(path, TrustMaterial(keys=pem, pgp_keyring=armored))
    except VerificationError as exc:
        return exc.reason
    return ""


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
    trust = TrustMaterial(roots=(ctx.ca.certificate(ROOT),),
                          log_keys=(NoteVerifier.from_verifier_key(log.verifier_key()),),
                          identity=IdentityPolicy(patterns=(".+",)), revocation="soft-fail")
    try:
        result = verify(path, trust)
    except VerificationError as exc:
        return set(), exc.reason
    return {r.keyid for r in result.longterm or () if r.identity == identity}, ""
