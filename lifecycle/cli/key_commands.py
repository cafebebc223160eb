"""``sif-lifecycle key``: generate, import, export and list keys; move them through their life."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from lifecycle.cli.common import UtcTime, passphrase_file_option, read_passphrase
from lifecycle.cli.pki_options import (
    config_option,
    emit,
    key_service,
    open_config,
)
from lifecycle.clock import utc_now
from lifecycle.files import read_key
from lifecycle.inventory.adopt import adopt_key, looks_like_pgp
from lifecycle.model.key_state import KeyState
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.pki.pgp import PgpAlgorithm
from lifecycle.store.models import KeyRecord


def _describe(row: KeyRecord) -> str:
    keyid = f" keyid {row.dsse_keyid}" if row.dsse_keyid else ""
    user = f" uid {row.user_id!r}" if row.user_id else ""
    return f"{row.fingerprint} {row.kind} {row.algorithm} {row.state}{keyid}{user}"


@click.group()
def key() -> None:
    """Signing keys, encrypted at rest in the key directory.

    \b
    Example:
      export SIF_LIFECYCLE_PASSPHRASE=...
      sif-lifecycle key generate --algorithm ed25519
      sif-lifecycle key list
    """


@key.command()
@config_option
@passphrase_file_option
@click.option("--algorithm", type=click.Choice([a.value for a in KeyAlgorithm]), default="p256",
              show_default=True, help="PEM key type (with --pgp: rsa3072, rsa4096 or ed25519).")
@click.option("--pgp", is_flag=True, help="Make an OpenPGP key (needs --user-id).")
@click.option("--user-id", help='OpenPGP user ID, "Name <email>".')
@click.option("--expires", type=UtcTime(), help="OpenPGP key expiry time.")
def generate(config_path: Path | None, passphrase_file: Path | None, algorithm: str, pgp: bool,
             user_id: str | None, expires: datetime | None) -> None:
    """Generate a key and store it encrypted; prints fingerprint and DSSE keyid.

    \b
    Example:
      sif-lifecycle key generate --algorithm p384
      sif-lifecycle key generate --pgp --algorithm ed25519 \\
          --user-id "Build Bot <bot@example.org>" --expires 2030-01-01
    """
    service = key_service(open_config(config_path))
    if pgp:
        if not user_id:
            raise click.UsageError("--pgp needs --user-id")
        if algorithm not in {a.value for a in PgpAlgorithm}:
            raise click.UsageError("PGP keys are rsa3072, rsa4096 or ed25519")
        row = service.generate_pgp(PgpAlgorithm(algorithm), user_id,
                                   read_passphrase(passphrase_file, confirm=True), expires=expires)
    else:
        row = service.generate(KeyAlgorithm(algorithm),
                               read_passphrase(passphrase_file, confirm=True))
    click.echo(_describe(row))


@key.command(name="import")
@config_option
@passphrase_file_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--pgp", is_flag=True,
              help="FILE is an OpenPGP keyring (found without it when FILE starts like one).")
@click.option("--source-passphrase-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Passphrase of FILE if it differs from the store passphrase.")
@click.option("--fingerprint", "fingerprints", multiple=True,
              help="Import only this secret key of the keyring (repeatable; default: all).")
@click.option("--image-set", help="Make the imported PGP keys active keys of this image set: "
                                  "images they already signed are tracked as they are.")
def import_(config_path: Path | None, passphrase_file: Path | None, file: Path, pgp: bool,
            source_passphrase_file: Path | None, fingerprints: tuple[str, ...],
            image_set: str | None) -> None:
    """Import a PEM (PKCS#1/PKCS#8/SEC1) private key or the secret keys of an OpenPGP keyring.

    A keyring is what singularity/apptainer keep (~/.singularity/sypgp/pgp-secret, or
    ~/.apptainer/keys/pgp-secret) or what their key export writes, binary or armored, one or
    several keys. Every key is stored encrypted under the store passphrase: a key protected
    with another one is unlocked with --source-passphrase-file and re-protected. All keys are
    imported, or none (a public keyring, a missing --fingerprint, a wrong passphrase, a key
    already stored).

    \b
    Example:
      sif-lifecycle key import signing.pem --source-passphrase-file old.pass
      sif-lifecycle key import ~/.singularity/sypgp/pgp-secret \\
          --source-passphrase-file sypgp.pass --image-set apps
    """
    data = read_key(file)
    config = open_config(config_path)
    service = key_service(config)
    passphrase = read_passphrase(passphrase_file)
    source = read_passphrase(source_passphrase_file) if source_passphrase_file else None
    if image_set is not None and config.policies.get(image_set) is None:
        raise click.UsageError(f"--image-set {image_set!r} is not in the configuration")
    if pgp or looks_like_pgp(data):
        rows = service.import_pgp_keyring(data, passphrase, path=file, source_passphrase=source,
                                          only=fingerprints)
    else:
        if fingerprints:
            raise click.UsageError("--fingerprint selects keys of an OpenPGP keyring")
        rows = [service.import_pem(data, passphrase, path=file, source_passphrase=source)]
    for row in rows:
        if image_set is not None:
            adopt_key(service, row, image_set, utc_now())
        click.echo(_describe(service.get(row.fingerprint)))


@key.command()
@config_option
@passphrase_file_option
@click.argument("key_id")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write here instead of stdout.")
def export(config_path: Path | None, passphrase_file: Path | None, key_id: str,
           output: Path | None) -> None:
    """Export the public key: PEM SubjectPublicKeyInfo, or an armored OpenPGP public key.

    KEY_ID is a fingerprint (8+ hex digits), a DSSE keyid (SHA256:...) or a list number.

    \b
    Example:
      sif-lifecycle key export 3f2a9c1e -o signing.pub
    """
    service = key_service(open_config(config_path))
    row = service.get(key_id)
    passphrase = read_passphrase(passphrase_file) if row.kind == "pem" else None
    emit(service.public_bytes(key_id, passphrase), output)


@key.command(name="list")
@config_option
def list_(config_path: Path | None) -> None:
    """List keys: fingerprint, kind, algorithm, state, DSSE keyid.

    \b
    Example:
      sif-lifecycle key list
    """
    for row in key_service(open_config(config_path)).list():
        click.echo(f"{row.id:>4} {row.purpose:<15} {_describe(row)}")


@key.command()
@config_option
@click.argument("key_id")
@click.argument("state", type=click.Choice([s.value for s in KeyState]))
@click.option("--reason", required=True, help="Why; recorded in the key history and audit log.")
@click.option("--at", type=UtcTime(), help="When it happened (default: now).")
def transition(config_path: Path | None, key_id: str, state: str, reason: str,
               at: datetime | None) -> None:
    """Move a key to STATE (pending -> active -> retiring -> retired; revoked/compromised).

    \b
    Example:
      sif-lifecycle key transition 3f2a9c1e active --reason "first signing key"
    """
    row = key_service(open_config(config_path)).transition(key_id, KeyState(state), reason, at=at)
    click.echo(_describe(row))


def _keyserver_commands() -> None:
    from lifecycle.cli import keyserver_commands as ks

    for command in (ks.push, ks.pull, ks.search, ks.status):
        key.add_command(command)


_keyserver_commands()
