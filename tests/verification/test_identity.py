"""How a logged signature is judged rests on signed material only (finding 3).

The DSSE extension's ``kind`` is not covered by any signature: rewriting ``ephemeral/v1`` to
``evidence/v1`` must not lift the requirement to name the accepted signer identity.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import VerificationError
from lifecycle.verification.extension import EPHEMERAL_KIND, EVIDENCE_KIND
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, verify
from tests.ephemeral.conftest import IDENTITY, World
from tests.verification.conftest import rewrite_envelope, set_kind


def _trust(world: World, identity: IdentityPolicy | None = None) -> TrustMaterial:
    files = world.trust_files()
    return TrustMaterial(roots=(files["roots"],), crls=(files["crl"],), log_keys=(files["vkey"],),
                         identity=identity or IdentityPolicy(), revocation="soft-fail")


@pytest.mark.parametrize("kind", [EPHEMERAL_KIND, EVIDENCE_KIND, "https://example.org/other"])
def test_no_identity_is_refused_whatever_the_unsigned_kind_says(world: World, kind: str) -> None:
    image = world.image()
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)
    rewrite_envelope(image, set_kind(kind))
    with pytest.raises(VerificationError) as exc:
        verify(image, _trust(world))
    assert exc.value.result is not None and not exc.value.result.ok


def test_cli_bypass_by_rewriting_the_kind_exits_1(world: World) -> None:
    image = world.image()
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)
    rewrite_envelope(image, set_kind(EVIDENCE_KIND))
    files = world.trust_files()
    args = ["verify", "--log-key", str(files["vkey"]), "--certificate-roots", str(files["roots"]),
            "--crl", str(files["crl"]), "--revocation", "soft-fail", str(image)]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1, refused.output
    assert "identity" in refused.output
    accepted = CliRunner().invoke(cli, [*args[:-1], "--identity", IDENTITY, str(image)])
    assert accepted.exit_code == 0, accepted.output


def test_named_identity_still_verifies_after_the_kind_was_rewritten(world: World) -> None:
    image = world.image()
    sign_ephemeral(str(image), IDENTITY, world.ca, world.client)
    rewrite_envelope(image, set_kind(EVIDENCE_KIND))
    result = verify(image, _trust(world, IdentityPolicy((IDENTITY,))))
    assert result.longterm is not None and result.longterm[0].identity == IDENTITY
    with pytest.raises(VerificationError, match="does not match the accepted identities"):
        verify(image, _trust(world, IdentityPolicy(("someone-else@example.org",))))
