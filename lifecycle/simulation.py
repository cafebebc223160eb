"""``apply --at FUTURE --simulate DIR``: watch years pass on a copy, never on the real store.

Applying at a future time issues certificates that are "not yet valid" today and moves the
planner's clock past them, so it is refused on the real store (see :func:`guard_future`). A
simulation copies what ``apply`` reads and writes (the SQLite store, the key directory, the log's
key file, the publish directories and the images of every configured set) into DIR, points the
copied inventory at the copied images, and writes ``DIR/config.toml`` naming only the copies.
"""

from __future__ import annotations

import shutil
import sqlite3
import tomllib
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from lifecycle import globs
from lifecycle.config import Config
from lifecycle.errors import LifecycleError

CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the real clock ``apply --at`` may act on the real store."""

CONFIG_NAME = "config.toml"


def guard_future(at: datetime, real_now: datetime) -> None:
    """Refuse to act on the real store at a time beyond the clock skew."""
    if at - real_now > CLOCK_SKEW:
        raise LifecycleError(
            f"apply --at {at.isoformat()} is in the future and would change the real store "
            "(certificates issued then are not valid today)",
            hint="add --dry-run to list the actions, or --simulate DIR to apply them to a copy")


def _sqlite_file(url: str, what: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise LifecycleError(f"--simulate copies a SQLite {what}; this one is {url.split(':')[0]}",
                             hint="use --dry-run, or point a copy of the config at a scratch "
                             "copy of the database (pg_dump | psql) and apply there")
    return Path(url[len(prefix):])


def _mirror(root: Path, path: str) -> str:
    """``/srv/images/a.sif`` -> ``DIR/images/srv/images/a.sif`` (globs too)."""
    return str(root) + "/" + path.lstrip("/")


def create(config: Config, config_path: Path | None, directory: Path) -> Path:
    """Copy the real store and images into ``directory``; returns the copy's config file."""
    if config.tlog is not None and config.tlog.url:
        raise LifecycleError("--simulate cannot copy a log served over HTTP ([tlog] url): "
                             "signing would append to the real log", hint="use --dry-run")
    database = _sqlite_file(config.database_url, "store")
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise LifecycleError("simulation directory is not empty", path=directory,
                             hint="give a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    copy_db = directory / "lifecycle.db"
    images = directory / "images"
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(copy_db)) as replica:
        source.backup(replica)  # a consistent copy, even while the service writes
        originals = [row[0] for row in replica.execute("SELECT path FROM images")]
        replica.executemany("UPDATE images SET path = ? WHERE path = ?",
                         [(_mirror(images, p), p) for p in originals])
        replica.commit()
    for pattern in config.policies.scan_roots():
        for path in globs.expand([pattern]):
            target_path = Path(_mirror(images, path))
            target_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target_path)
    if config.key_directory.is_dir():
        shutil.copytree(config.key_directory, directory / "keys")
    doc = _read(config_path)
    doc["database"] = {"path": str(copy_db)}
    doc.setdefault("keys", {})["directory"] = str(directory / "keys")
    if config.tlog is not None:
        log_key = directory / config.tlog.key_file.name
        if config.tlog.key_file.is_file():
            shutil.copy2(config.tlog.key_file, log_key)
        doc["tlog"]["key_file"] = str(log_key)
    for table, policy in zip(doc.get("image_sets", []), config.policies.image_sets, strict=True):
        table["paths"] = [_mirror(images, p) for p in policy.paths]
        if policy.publish_directory is not None:
            copy = directory / "publish" / policy.name
            if policy.publish_directory.is_dir():
                shutil.copytree(policy.publish_directory, copy)
            table["publish_directory"] = str(copy)
    doc.pop("keyserver", None)  # the copy must not publish its keys to the real keyservers
    serve = doc.get("serve", {})
    for key in ("report_directory", "bundle_outbox"):
        if key in serve:
            serve[key] = str(directory / key)
    out = directory / CONFIG_NAME
    out.write_text("# A simulation copy written by `sif-lifecycle apply --simulate`.\n"
                   + tomli_w.dumps(doc), encoding="utf-8")
    return out


def _read(config_path: Path | None) -> dict[str, Any]:
    if config_path is None:
        return {}
    return tomllib.loads(config_path.read_text(encoding="utf-8"))
