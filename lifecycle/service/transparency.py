"""Opening the transparency log the configuration names: for the service, the CLI and the demo.

These are the ways in: a log in a database (local, with or without its signing key), the log
``[tlog]`` configures (local or over HTTP), the HTTP endpoints ``serve`` mounts, and a new log.
Passphrases are passed in; asking for them is the caller's business.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import Engine

from lifecycle.config import Config, TlogSettings
from lifecycle.errors import LogError
from lifecycle.files import read_key
from lifecycle.service.tlog_http import Issuers, LogEndpoints
from lifecycle.store.db import make_engine, sqlite_file
from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage, read_meta, write_meta
from lifecycle.tlog import Log, NoteSigner
from lifecycle.tlog.client import HttpLogClient, LocalLogClient, LogClient
from lifecycle.tlog.keys import decrypt_signer, encrypt_signer


def engine_url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


def log_meta(engine: Engine, db: str) -> dict[str, str]:
    meta = read_meta(engine)
    if "origin" not in meta or "verifier_key" not in meta:
        raise LogError(f"{db} holds no log", hint="run 'sif-lifecycle tlog init' first")
    return meta


def open_log(db: str, key_path: Path | None = None, passphrase: bytes | None = None) -> Log:
    """The log in ``db`` (a file or URL), with its signing key when ``key_path`` is given.

    A SQLite file that does not exist is refused, never created: only ``tlog init`` makes one.
    """
    url = engine_url(db)
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        raise LogError("no such log database", path=db,
                       hint="run 'sif-lifecycle tlog init' first, or give the --db it created")
    engine = make_engine(url)
    meta = log_meta(engine, db)
    signer = None
    if key_path is not None:
        data = read_key(key_path)
        if passphrase is None:
            raise LogError("the log key needs its passphrase", path=key_path)
        signer = decrypt_signer(data, passphrase, path=str(key_path))
        if signer.verifier.verifier_key() != meta["verifier_key"]:
            raise LogError("this key is not the log's key", path=key_path)
    return Log(SqlLogStorage(engine), meta["origin"], signer)


def local_client(db: str, key_path: Path, passphrase: bytes | None = None) -> LocalLogClient:
    """The log in ``db`` opened with its key, for signing in this process."""
    log = open_log(db, key_path, passphrase)
    assert log.signer is not None
    return LocalLogClient(log, log.signer.verifier.verifier_key())


MIN_TOKEN = 16


def read_append_token(path: Path) -> str:
    """The bearer token in ``path`` (first line, whitespace stripped), at least 16 characters."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(f"cannot read the append token: {getattr(exc, 'strerror', None) or exc}",
                       path=path) from None
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN or not token.isprintable():
        raise LogError(f"the append token must be one line of at least {MIN_TOKEN} printable "
                       "characters", path=path, hint="e.g. openssl rand -hex 32 > tlog-token")
    return token


def http_log_client(url: str, settings: TlogSettings | None) -> HttpLogClient:
    """A client of the log at ``url`` that appends with ``[tlog] append_token_file`` (if set;
    else $SIF_LIFECYCLE_TLOG_TOKEN)."""
    token_file = settings.append_token_file if settings is not None else None
    return HttpLogClient(url, token=read_append_token(token_file) if token_file else None)


def config_log_client(config: Config, passphrase: bytes) -> LogClient | None:
    """The log ``[tlog]`` configures (over HTTP when it has a ``url``), or None without one:
    what ephemeral image sets sign through."""
    settings = config.tlog
    if settings is None:
        return None
    if settings.url:
        return http_log_client(settings.url, settings)
    return local_client(settings.database_url, settings.key_file, passphrase)


def log_endpoints(db: str, key_path: Path, passphrase: bytes | None = None, *,
                  token_file: Path | None = None, issuers: Issuers | None = None,
                  ) -> LogEndpoints:
    """What ``serve`` mounts at /tlog/: appends need the token in ``token_file`` and a
    certificate from one of ``issuers`` (without a token file they are refused)."""
    client = local_client(db, key_path, passphrase)
    token = read_append_token(token_file).encode() if token_file else None
    return LogEndpoints(client.log, client.verifier_key(), token, issuers or (lambda: ()))


def create_log(db: str, origin: str, key_path: Path, passphrase: bytes) -> str:
    """A new log in ``db`` with its key encrypted into ``key_path`` (0600); its verifier key."""
    if key_path.exists():
        raise LogError("a key file already exists; refusing to overwrite it", path=key_path)
    engine = open_migrated(engine_url(db))
    if read_meta(engine):
        raise LogError(f"{db} already holds the log {read_meta(engine).get('origin')!r}")
    signer = NoteSigner.generate(origin)
    data = encrypt_signer(signer, passphrase)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    vkey = signer.verifier.verifier_key()
    write_meta(engine, {"origin": origin, "verifier_key": vkey})
    return vkey
