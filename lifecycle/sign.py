"""Sign an image: one entry for DSSE and PGP clear-sign (:func:`sign`) and one for ephemeral
signing (:func:`sign_ephemeral`), for the CLI and for Python users::

    from lifecycle import sign
    sign("image.sif", keys=("signing.pem",))

A PEM private key makes a DSSE signature (several keys share the group's one envelope), an
armored PGP private key a clear-sign one. Both append to the image and refuse to bless content
that no longer matches its current signatures. Encrypted keys ask ``passphrase`` (bytes, or a
callable given the key file) only when they turn out to be encrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.errors import KeyMaterialError, LifecycleError

if TYPE_CHECKING:  # the machinery is imported when signing runs, not with the API
    from cryptography import x509

    from lifecycle.integrity import dsse
    from lifecycle.integrity.digest import Progress
    from lifecycle.integrity.keys import PassphraseSource
    from lifecycle.integrity.sign import SignedGroup, Signer, SignOptions
    from lifecycle.pki.keys import KeyAlgorithm
    from lifecycle.store.ca_service import CaService
    from lifecycle.tlog.client import LogClient
    from lifecycle.tlog.evidence import VerifiedEntry
    from lifecycle.tlog.note import NoteVerifier

__all__ = ["EphemeralSignResult", "SignResult", "sign", "sign_ephemeral", "signer_for"]


@dataclass(frozen=True)
class SignResult:
    """What signing wrote: one entry per signed group, and who signed (keyid or fingerprint)."""

    image: str
    signed: tuple[SignedGroup, ...]
    signer: str


@dataclass(frozen=True)
class EphemeralSignResult:
    """What ephemeral signing wrote, the certificate of the destroyed key and its log entries."""

    image: str
    signed: tuple[SignedGroup, ...]
    certificate: x509.Certificate
    identity: str
    entries: tuple[VerifiedEntry, ...]
    """One verified log entry per signed group."""


def _source(passphrase: bytes | PassphraseSource | None) -> PassphraseSource:
    from lifecycle.integrity.keys import no_passphrase

    if passphrase is None:
        return no_passphrase
    if isinstance(passphrase, bytes):
        return lambda _path: passphrase
    return passphrase


def signer_for(keys: Sequence[str | Path], passphrase: bytes | PassphraseSource | None = None,
               extension: dsse.Extension | None = None,
               timestamper: Callable[[bytes], Sequence[bytes]] | None = None) -> Signer:
    """The signer for key files: one PGP key (clear-sign) or PEM keys (one DSSE envelope).

    ``timestamper`` (e.g. :class:`lifecycle.timestamp.client.Timestamper`) is given each fresh
    DSSE signature's bytes; its RFC 3161 tokens go into that signature's extension."""
    from lifecycle.integrity.keys import is_pgp_file, load_pgp_signing_key, load_signing_key
    from lifecycle.integrity.sign import DsseSigner, PgpSigner

    if not keys:
        raise LifecycleError(
            "no signing key given", hint="pass --key FILE (PEM private key or armored PGP key)")
    paths = [Path(k) for k in keys]
    source = _source(passphrase)
    pgp_files = [k for k in paths if is_pgp_file(k)]
    if pgp_files:
        if len(paths) > 1:
            raise KeyMaterialError(
                "a PGP signature takes exactly one key", path=pgp_files[0],
                hint="sign once per PGP key, or use PEM keys to share one DSSE envelope")
        if extension is not None or timestamper is not None:
            what = "an extension" if extension is not None else "a timestamp (its extension)"
            raise LifecycleError(f"{what} goes into a DSSE signature, not a PGP one",
                                 path=pgp_files[0], hint="sign with a PEM key")
        return PgpSigner(load_pgp_signing_key(paths[0], source))
    attest = None
    if timestamper is not None:
        from lifecycle.timestamp.tokens import stamping

        attest = stamping(timestamper)
    return DsseSigner(tuple(load_signing_key(k, source) for k in paths), extension, attest)


def sign(image: str | Path, keys: Sequence[str | Path] = (), *,
         passphrase: bytes | PassphraseSource | None = None, options: SignOptions | None = None,
         extension: dsse.Extension | None = None, signer: Signer | None = None,
         progress: Progress | None = None) -> SignResult:
    """Sign the groups of ``image`` (all by default; ``options`` selects) with ``keys``, or
    with an already built ``signer``. Image data is read once."""
    from lifecycle.integrity.sign import SignOptions, sign_image

    chosen = signer if signer is not None else signer_for(keys, passphrase, extension)
    done = sign_image(str(image), chosen, options or SignOptions(), progress)
    return SignResult(str(image), tuple(done), chosen.identity)


def sign_ephemeral(image: str | Path, identity: str, ca: CaService, log: LogClient, *,
                   lifetime: timedelta | None = None, algorithm: KeyAlgorithm | None = None,
                   log_keys: Sequence[NoteVerifier] = (), options: SignOptions | None = None,
                   progress: Progress | None = None) -> EphemeralSignResult:
    """Sign with a key made in memory and destroyed after, certified for minutes by the
    ephemeral CA and recorded in ``log`` (see :mod:`lifecycle.ephemeral`)."""
    from lifecycle import ephemeral
    from lifecycle.pki.keys import KeyAlgorithm

    result = ephemeral.sign_ephemeral(
        str(image), identity, ca, log, lifetime=lifetime or ephemeral.DEFAULT_LIFETIME,
        algorithm=algorithm or KeyAlgorithm.P256, log_keys=log_keys, options=options,
        progress=progress)
    return EphemeralSignResult(str(image), tuple(result.signed), result.certificate,
                               result.identity, tuple(result.entries))
