"""``sif-lifecycle tlog ...``: run a local transparency log and check what it publishes."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import click

from lifecycle.cli.common import passphrase_file_option, read_passphrase
from lifecycle.config import ENV_CONFIG, TlogSettings, load_config
from lifecycle.errors import LogError
from lifecycle.files import read_document
from lifecycle.service import transparency
from lifecycle.service.transparency import create_log, engine_url, log_meta
from lifecycle.store.db import make_engine
from lifecycle.tlog import (
    ConsistencyProof,
    Log,
    LoggedEntry,
    NoteVerifier,
    Submission,
    check_consistency,
    open_checkpoint,
)
from lifecycle.tlog.client import HttpLogClient
from lifecycle.tlog.entry import format_time, parse_digest


def _config_tlog() -> TlogSettings | None:
    """The ``[tlog]`` section of $SIF_LIFECYCLE_CONFIG, if there is one."""
    return load_config().tlog if os.environ.get(ENV_CONFIG) else None


def _default_db(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    del ctx, param
    if value is not None:
        return value
    settings = _config_tlog()
    return settings.database_url if settings is not None else "tlog.db"


def _default_key(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    del ctx, param
    if value is not None:
        return value
    settings = _config_tlog()
    return settings.key_file if settings is not None else Path("tlog-key.json")


db_option = click.option(
    "--db",
    envvar="SIF_LIFECYCLE_TLOG_DB",
    default=None,
    callback=_default_db,
    help="SQLite file or SQLAlchemy URL of the log (env SIF_LIFECYCLE_TLOG_DB; default: the "
         "store database when the config has a [tlog] section, else tlog.db).",
)
key_option = click.option(
    "--key",
    "key_path",
    envvar="SIF_LIFECYCLE_TLOG_KEY",
    default=None,
    callback=_default_key,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The log key file, encrypted with the passphrase (--passphrase-file, else "
         "SIF_LIFECYCLE_PASSPHRASE; env SIF_LIFECYCLE_TLOG_KEY; "
         "default: [tlog] key_file of the config, else tlog-key.json).",
)
size_option = click.option(
    "--size", type=click.IntRange(min=0), default=None, help="Tree size (default: current)."
)


def open_log(db: str, key_path: Path | None = None, passphrase_file: Path | None = None) -> Log:
    """The log in ``db``; with ``key_path``, its signing key too (the passphrase from
    ``--passphrase-file``, else $SIF_LIFECYCLE_PASSPHRASE, else asked for)."""
    passphrase = (read_passphrase(passphrase_file, what="the log key")
                  if key_path is not None else None)
    return transparency.open_log(db, key_path, passphrase)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _entry_json(logged: LoggedEntry) -> dict[str, Any]:
    return {
        "index": logged.index,
        "leaf_hash": base64.b64encode(logged.leaf_hash).decode(),
        "entry": logged.entry.to_json(),
    }


@click.group()
def tlog() -> None:
    """Run the local transparency log: entries, checkpoints, proofs.

    \b
    Example:
      export SIF_LIFECYCLE_PASSPHRASE=...
      sif-lifecycle tlog init --origin example.org/log
      sif-lifecycle tlog checkpoint > cp.txt
      sif-lifecycle tlog check cp.txt
    """


def _default_origin(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    del ctx, param
    if value is not None:
        return value
    settings = _config_tlog()
    if settings is None:
        raise click.UsageError("--origin is required (or a [tlog] origin in the config)")
    return settings.origin


@tlog.command()
@click.option("--origin", default=None, callback=_default_origin,
              help="Unique name of the log, also its key name (default: [tlog] origin).")
@db_option
@key_option
@passphrase_file_option
def init(origin: str, db: str, key_path: Path, passphrase_file: Path | None) -> None:
    """Create a log and its Ed25519 key (encrypted with the passphrase); print the verifier key.

    \b
    Example:
      SIF_LIFECYCLE_PASSPHRASE=secret sif-lifecycle tlog init --origin example.org/log \\
        --db tlog.db --key tlog-key.json
    """
    click.echo(create_log(db, origin, key_path,
                          read_passphrase(passphrase_file, what="the log key", confirm=True)))


@tlog.command("verifier-key")
@db_option
def verifier_key(db: str) -> None:
    """Print the log's verifier key, to pin in verifiers (Go's note format).

    \b
    Example:
      sif-lifecycle tlog verifier-key --db tlog.db > log.vkey
    """
    click.echo(log_meta(make_engine(engine_url(db)), db)["verifier_key"])


@tlog.command()
@click.option("--image-id", required=True, help="Id of the signed image (e.g. its SIF UUID).")
@click.option("--payload-digest", required=True, help="Digest of the signed payload, sha256:HEX.")
@click.option(
    "--signature",
    "signature_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with the raw signature bytes.",
)
@click.option(
    "--certificate",
    "certificate_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with the signing certificate (PEM or DER).",
)
@db_option
@key_option
@passphrase_file_option
def add(
    image_id: str,
    payload_digest: str,
    signature_path: Path,
    certificate_path: Path,
    db: str,
    key_path: Path,
    passphrase_file: Path | None,
) -> None:
    """Record a signature; print its index, leaf hash and signed timestamp (JSON).

    \b
    Example:
      sif-lifecycle tlog add --image-id 3f2a... --payload-digest sha256:ab12... \\
        --signature sig.bin --certificate cert.pem
    """
    log = open_log(db, key_path, passphrase_file)
    algorithm, digest = parse_digest(payload_digest)
    submission = Submission(
        digest, read_document(signature_path), read_document(certificate_path), image_id, algorithm
    )
    logged = log.append(submission)
    _echo_json(
        {
            "index": logged.index,
            "leaf_hash": base64.b64encode(logged.leaf_hash).decode(),
            "integrated_time": format_time(logged.entry.integrated_time),
            "timestamp": log.signed_timestamp(logged.index).decode(),
        }
    )


@tlog.command()
@click.argument("index", type=click.IntRange(min=0))
@click.option("--timestamp", is_flag=True, help="Add the signed timestamp (needs the log key).")
@db_option
@key_option
@passphrase_file_option
def get(index: int, timestamp: bool, db: str, key_path: Path, passphrase_file: Path | None) -> None:
    """Print entry INDEX as JSON.

    \b
    Example:
      sif-lifecycle tlog get 0 --timestamp
    """
    log = open_log(db, key_path if timestamp else None, passphrase_file)
    out = _entry_json(log.get(index))
    if timestamp:
        out["timestamp"] = log.signed_timestamp(index).decode()
    _echo_json(out)


@tlog.command()
@click.argument("index", type=click.IntRange(min=0))
@size_option
@db_option
@key_option
@passphrase_file_option
def evidence(index: int, size: int | None, db: str, key_path: Path,
             passphrase_file: Path | None) -> None:
    """Print entry INDEX with its inclusion proof, checkpoint and signed timestamp (JSON).

    This is what a signature carries to be verified offline, years later.

    \b
    Example:
      sif-lifecycle tlog evidence 0 > evidence.json
    """
    _echo_json(open_log(db, key_path, passphrase_file).evidence(index, size).to_json())


@tlog.command()
@size_option
@db_option
@key_option
@passphrase_file_option
def checkpoint(size: int | None, db: str, key_path: Path, passphrase_file: Path | None) -> None:
    """Print a signed checkpoint (C2SP tlog-checkpoint) of the log.

    \b
    Example:
      sif-lifecycle tlog checkpoint > checkpoint.txt
    """
    click.echo(open_log(db, key_path, passphrase_file).signed_checkpoint(size), nl=False)


@tlog.command("prove-inclusion")
@click.argument("index", type=click.IntRange(min=0))
@size_option
@db_option
def prove_inclusion(index: int, size: int | None, db: str) -> None:
    """Print the inclusion proof of entry INDEX in the tree of --size entries (JSON).

    \b
    Example:
      sif-lifecycle tlog prove-inclusion 5 --size 8
    """
    log = open_log(db)
    out = log.inclusion_proof(index, size).to_json()
    out["leaf_hash"] = base64.b64encode(log.get(index).leaf_hash).decode()
    _echo_json(out)


@tlog.command("prove-consistency")
@click.argument("old_size", type=click.IntRange(min=0))
@size_option
@db_option
def prove_consistency(old_size: int, size: int | None, db: str) -> None:
    """Print the proof that the tree of OLD_SIZE entries is a prefix of --size (JSON).

    \b
    Example:
      sif-lifecycle tlog prove-consistency 6 --size 8
    """
    _echo_json(open_log(db).consistency_proof(old_size, size).to_json())


@tlog.command()
@click.argument("remembered", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--verifier-key",
    "vkey",
    default=None,
    help="Pinned verifier key of the log (default: the one recorded in --db).",
)
@click.option(
    "--new",
    "new_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A newer signed checkpoint to check instead of the log in --db (needs --proof).",
)
@click.option(
    "--proof",
    "proof_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Consistency proof JSON from remembered to --new (from 'tlog prove-consistency').",
)
@click.option("--log-url", default=None,
              help="Ask the log served at this URL (needs --verifier-key) instead of --db.")
@db_option
def check(
    remembered: Path, vkey: str | None, new_path: Path | None, proof_path: Path | None,
    log_url: str | None, db: str,
) -> None:
    """Prove the log only grew since the REMEMBERED checkpoint; exit 1 and report a fork if not.

    REMEMBERED is a signed checkpoint file, or a verifier's --checkpoint-store directory: then
    the checkpoint it remembers for the log is checked, and replaced by the newer signed one
    (from --new or --log-url) once the proof connects them.

    \b
    Example:
      sif-lifecycle tlog check old-checkpoint.txt
      sif-lifecycle tlog check old.txt --new new.txt --proof proof.json \\
        --verifier-key "$(cat log.vkey)"
      sif-lifecycle tlog check checkpoints/ --log-url http://127.0.0.1:8080 \\
        --verifier-key "$(cat log.vkey)"
    """
    from lifecycle.pki.files import write_atomic
    from lifecycle.verification.checkpoints import CheckpointStore

    if (new_path is None) != (proof_path is None):
        raise click.UsageError("--new and --proof go together")
    if log_url is not None and (vkey is None or new_path is not None):
        raise click.UsageError("--log-url needs --verifier-key (pinned, never the server's) "
                               "and excludes --new")
    if vkey is None:
        vkey = log_meta(make_engine(engine_url(db)), db)["verifier_key"]
    verifier = NoteVerifier.from_verifier_key(vkey)
    store = CheckpointStore(remembered) if remembered.is_dir() else None
    old_path = store.path(verifier.name) if store is not None else remembered
    if not old_path.is_file():
        raise LogError(f"no checkpoint of {verifier.name!r} is remembered here", path=remembered)
    old = open_checkpoint(read_document(old_path), [verifier])
    new_note: bytes | None = None
    if new_path is not None and proof_path is not None:
        new_note = read_document(new_path)
        new = open_checkpoint(new_note, [verifier], origin=old.origin)
        try:
            proof = ConsistencyProof.from_json(json.loads(read_document(proof_path)))
        except ValueError:
            raise LogError("the proof is not JSON", path=proof_path) from None
    else:
        source: Any = HttpLogClient(log_url) if log_url is not None else open_log(db)
        if log_url is not None:
            new_note = source.checkpoint()
            new = open_checkpoint(new_note, [verifier], origin=old.origin)
        else:
            new = source.checkpoint()
        if new.origin != old.origin:
            raise LogError(f"the remembered checkpoint is of {old.origin!r}, not {new.origin!r}")
        proof = ConsistencyProof(old.size, new.size, ())
        if old.size <= new.size:
            proof = source.consistency_proof(old.size, new.size)
    check_consistency(old, new, proof)
    if store is not None and new_note is not None and new.size > old.size:
        write_atomic(old_path, new_note)
    click.echo(f"consistent: {old.origin} grew from {old.size} to {new.size} entries")
    if log_url is None and new_path is None:
        _echo_orphans(db)


def _echo_orphans(db: str) -> None:
    """Signings that appended to the log and never wrote their image (see store.tlog)."""
    from lifecycle.store.tlog import IntentJournal

    for intent in IntentJournal(make_engine(engine_url(db))).pending():
        if not intent.entries and not intent.suspects:
            continue  # stopped before its append: nothing in the log is orphaned
        recorded = [f"{origin} #{index}" for origin, index in intent.entries]
        found = [f"#{index} (same image id, logged since)" for index in intent.suspects]
        click.echo(f"orphan: signing of {intent.image_path} (image {intent.image_id}) began "
                   f"{intent.started.isoformat()} and never wrote its signature; log entries: "
                   f"{', '.join(recorded + found) or 'none'}")
