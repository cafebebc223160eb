"""``sif-lifecycle key push / pull / search / status``: PGP keys and HKP keyservers.

They mirror ``singularity key push / pull / search``; the keyservers are ``--url`` or the
config's ``[keyserver] urls``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from lifecycle.cli.pki_options import config_option, emit, key_service, open_config
from lifecycle.clock import utc_now
from lifecycle.errors import KeyserverError
from lifecycle.keyserver.pool import clients, fetch
from lifecycle.pki.pgp import pgp_public_armor
from lifecycle.store.key_publications import key_status
from lifecycle.strategies.handlers.keyserver import publish_key

url_option = click.option(
    "--url", "urls", multiple=True,
    help="Keyserver: hkp://HOST, hkps://HOST or http(s)://HOST:PORT (repeatable; default: the "
         "config's [keyserver] urls).")


def _day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "-"


@click.command()
@config_option
@url_option
@click.argument("key_id")
def push(config_path: Path | None, urls: tuple[str, ...], key_id: str) -> None:
    """Publish a stored PGP key's public part (POST /pks/add) to every keyserver.

    KEY_ID is a fingerprint (8+ hex digits) or a list number. The key goes with its latest
    self-signatures and revocations; each keyserver that took it is recorded, so the service
    does not push the same version again.

    \b
    Example:
      sif-lifecycle key push 3F2A9C1E --url hkp://127.0.0.1:11371
    """
    config = open_config(config_path)
    service = key_service(config)
    row = service.get(key_id)
    result = publish_key(service, row.fingerprint, config.keyserver, utc_now(), urls)
    for url in result.pushed:
        click.echo(f"pushed {result.fingerprint} (version {result.digest[:8]}) to {url}")
    for url in result.already:
        click.echo(f"{url} already has {result.fingerprint} version {result.digest[:8]}")


@click.command()
@config_option
@url_option
@click.argument("fingerprint")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the armored key here instead of stdout.")
def pull(config_path: Path | None, urls: tuple[str, ...], fingerprint: str,
         output: Path | None) -> None:
    """Fetch a public key by its full FINGERPRINT (/pks/lookup?op=get) and print it armored.

    The key is written only if its primary fingerprint is FINGERPRINT and every signature it
    made on itself verifies; another key, garbage or a forged self-signature is an error and
    nothing is written. Use the file with verify --key.

    \b
    Example:
      sif-lifecycle key pull 2E08DF1D669DE3981D76B9C1938D72AD7683282E -o signer.asc
    """
    config = open_config(config_path)
    got = fetch(clients(config.keyserver, urls), fingerprint)
    click.echo(f"fetched {got.fingerprint} from {got.url}", err=True)
    emit(pgp_public_armor(got.key), output)


@click.command()
@config_option
@url_option
@click.argument("text")
def search(config_path: Path | None, urls: tuple[str, ...], text: str) -> None:
    """Search the keyservers' index (/pks/lookup?op=index&options=mr) for TEXT.

    TEXT is a user ID fragment or email, or 0x followed by a key ID or fingerprint. One line per
    key: ID, algorithm and size, creation and expiry dates, flags (revoked, expired, disabled),
    then its user IDs. The index is the keyserver's word: pull a key to check it.

    \b
    Example:
      sif-lifecycle key search bot@example.org
    """
    config = open_config(config_path)
    for server in clients(config.keyserver, urls):
        entries = server.search(text)
        click.echo(f"{server.url}: {len(entries)} key(s)")
        for entry in entries:
            flags = ",".join(sorted(f.name.lower() for f in entry.flags)) or "-"
            size = f"{entry.algorithm or '?'}/{entry.bits or '?'}"
            click.echo(f"  {entry.key_id} {size} created {_day(entry.created)} "
                       f"expires {_day(entry.expires)} {flags}")
            for uid in entry.uids:
                click.echo(f"    uid {uid.user_id}")


@click.command()
@config_option
def status(config_path: Path | None) -> None:
    """Which version of each stored PGP key is on which configured keyserver.

    Read from the store only (no network): "published" means that keyserver took the key's
    current version, "pending" that the service still has to push it.

    \b
    Example:
      sif-lifecycle key status
    """
    config = open_config(config_path)
    service = key_service(config)
    if not config.keyserver.urls:
        raise KeyserverError("no keyserver configured", hint="set [keyserver] urls in the config")
    rows = key_status(service.engine, config.key_directory, config.keyserver.urls)
    click.echo(f"{'FINGERPRINT':<40} {'VERSION':<8} {'STATE':<10} KEYSERVER")
    for row in rows:
        click.echo(f"{row.fingerprint:<40} {row.digest[:8]:<8} {row.state.value:<10} {row.url}"
                   + (f" (since {row.published_at:%Y-%m-%d %H:%M})" if row.published_at else ""))
