"""Keys in the store: files in the key directory, metadata and lifecycle history in the database.

A file is written only inside the database transaction that records it, and removed again if
that transaction fails, so a failed command leaves neither a row nor a file behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pgpy
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from lifecycle.clock import Clock, utc_now
from lifecycle.errors import KeyMaterialError, KeyNotFoundError
from lifecycle.model import key_state
from lifecycle.pki import keys, pgp
from lifecycle.pki.files import write_atomic
from lifecycle.pki.keystore import (
    KeyDirectory,
    StoredKey,
    import_pem,
    import_pgp,
    import_pgp_keyring,
)
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.store.models import KeyRecord, KeyTransitionRecord


class KeyService:
    def __init__(self, engine: Engine, directory: Path, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.files = KeyDirectory(directory)
        self.clock = clock

    def _add(self, stored: StoredKey, purpose: str, now: datetime | None = None) -> KeyRecord:
        """Insert the row for a file just written; remove the file if the transaction fails."""
        return self._add_all([stored], purpose, now)[0]

    def _add_all(self, all_stored: list[StoredKey], purpose: str,
                 now: datetime | None = None) -> list[KeyRecord]:
        """:meth:`_add` for several files in one transaction: all rows, or none and no file."""
        rows = []
        try:
            with session_scope(self.engine) as session:
                for stored in all_stored:
                    now = now or self.clock()
                    row = KeyRecord(
                        fingerprint=stored.fingerprint, dsse_keyid=stored.dsse_keyid,
                        kind=stored.kind, algorithm=stored.algorithm, purpose=purpose,
                        state=key_state.KeyState.PENDING.value, file=stored.file,
                        user_id=stored.user_id, created_at=now, expires_at=stored.expires_at)
                    session.add(row)
                    session.flush()
                    self._append_transition(session, row, (), key_state.KeyState.PENDING, now,
                                            "added to the store")
                    audit.record(session, now, "key.add", stored.fingerprint, kind=stored.kind,
                                 algorithm=stored.algorithm, purpose=purpose)
                    rows.append(row)
            return rows
        except BaseException:
            for stored in all_stored:
                self.files.remove(stored.file)
            raise

    def _refuse_known(self, fingerprint: str) -> None:
        """Refuse a duplicate before its file would overwrite the stored one."""
        with session_scope(self.engine) as session:
            if session.exec(select(KeyRecord).where(
                    KeyRecord.fingerprint == fingerprint)).first() is not None:
                raise KeyMaterialError(f"key {fingerprint} is already in the store")

    def generate(self, algorithm: keys.KeyAlgorithm, passphrase: bytes, *,
                 purpose: str = "signing", now: datetime | None = None) -> KeyRecord:
        """A new PEM key, created at ``now`` (default: the service's clock)."""
        key = keys.generate_private_key(algorithm)
        return self._add(self.files.save_pem(key, passphrase), purpose, now)

    def generate_pgp(self, algorithm: pgp.PgpAlgorithm, user_id: str, passphrase: bytes, *,
                     expires: datetime | None = None, now: datetime | None = None) -> KeyRecord:
        """A new PGP key protected by the store passphrase, created at ``now`` (default: the
        service's clock)."""
        now = now or self.clock()
        key = pgp.generate_pgp_key(algorithm, user_id, passphrase.decode(), expires=expires,
                                   now=now)
        return self._add(self.files.save_pgp(key), "signing", now)

    def update_pgp(self, row: KeyRecord, key: pgpy.PGPKey, change: str, now: datetime
                   ) -> KeyRecord:
        """Store ``key`` (the same key with new self-signatures or a revocation) over ``row``'s
        file and record its new expiry; audited as ``key.<change>``.

        The file and the row change together: when the row cannot be written (the database
        refused or went away), the file gets its previous bytes back, so that a revocation or an
        extension is never in the key file while the store does not know of it.
        """
        if pgp.pgp_fingerprint(key) != row.fingerprint:
            raise KeyMaterialError(f"PGP key {pgp.pgp_fingerprint(key)} is not key "
                                   f"{row.fingerprint}")
        path = self.files.path(row.file)
        previous = path.read_bytes()
        stored = self.files.save_pgp(key)
        try:
            with session_scope(self.engine) as session:
                current = session.get(KeyRecord, row.id)
                assert current is not None
                current.expires_at = stored.expires_at
                session.add(current)
                audit.record(session, now, f"key.{change}", row.fingerprint,
                             expires_at=stored.expires_at)  # "pgp-revoke": inventory.fleet reads it
                session.flush()
                session.refresh(current)
                session.expunge(current)
                return current
        except BaseException:
            write_atomic(path, previous)
            raise

    def import_pem(self, data: bytes, passphrase: bytes, *, path: Path,
                   source_passphrase: bytes | None = None) -> KeyRecord:
        key = import_pem(data, source_passphrase or passphrase, path=path)
        self._refuse_known(keys.fingerprint(key.public_key()))
        return self._add(self.files.save_pem(key, passphrase), "signing")

    def import_pgp(self, data: bytes, passphrase: bytes, *, path: Path) -> KeyRecord:
        key = import_pgp(data, passphrase.decode(), path=path)
        self._refuse_known(pgp.pgp_fingerprint(key))
        return self._add(self.files.save_pgp(key), "signing")

    def import_pgp_keyring(self, data: bytes, passphrase: bytes, *, path: Path,
                           source_passphrase: bytes | None = None,
                           only: Sequence[str] = ()) -> list[KeyRecord]:
        """Every secret key of a singularity/apptainer keyring (or those in ``only``), stored
        protected under ``passphrase``: all of them, or none when one cannot be imported."""
        keys = import_pgp_keyring(data, passphrase.decode(), path=path, only=only,
                                  source_passphrase=source_passphrase.decode()
                                  if source_passphrase else None)
        for key in keys:
            self._refuse_known(pgp.pgp_fingerprint(key))
        stored: list[StoredKey] = []
        try:
            for key in keys:
                stored.append(self.files.save_pgp(key))
        except BaseException:
            for done in stored:
                self.files.remove(done.file)
            raise
        return self._add_all(stored, "signing")

    def get(self, ident: str) -> KeyRecord:
        """A key by database id, fingerprint (or a unique prefix of 8+ hex digits) or DSSE keyid."""
        with session_scope(self.engine) as session:
            query = select(KeyRecord)
            if ident.isdigit() and len(ident) < 8:
                query = query.where(KeyRecord.id == int(ident))
            elif ident.startswith("SHA256:"):
                query = query.where(KeyRecord.dsse_keyid == ident)
            elif len(ident) >= 8:
                wanted = ident.replace(" ", "").replace(":", "").lower()
                query = query.where(or_(col(KeyRecord.fingerprint).startswith(wanted),
                                        col(KeyRecord.fingerprint).startswith(wanted.upper())))
            else:
                raise KeyNotFoundError(f"key id {ident!r} is too short",
                                       hint="give 8 or more hex digits of the fingerprint")
            found = list(session.exec(query))
        if not found:
            raise KeyNotFoundError(f"no key {ident!r} in the store",
                                   hint="see 'sif-lifecycle key list'")
        if len(found) > 1:
            raise KeyNotFoundError(f"key id {ident!r} is ambiguous", hint="give more digits")
        return found[0]

    def list(self) -> list[KeyRecord]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(KeyRecord).order_by(col(KeyRecord.id))))

    def public_bytes(self, ident: str, passphrase: bytes | None = None) -> bytes:
        """PEM SubjectPublicKeyInfo, or an armored PGP public key (no passphrase needed)."""
        row = self.get(ident)
        if row.kind == "pgp":
            return pgp.pgp_public_armor(self.files.load_pgp(row.file))
        if passphrase is None:
            raise KeyMaterialError("the store passphrase is needed to read this PEM key")
        return keys.public_pem(self.files.load_pem(row.file, passphrase).public_key())

    def private_key(self, row: KeyRecord, passphrase: bytes) -> keys.PrivateKey:
        if row.kind != "pem":
            raise KeyMaterialError(f"key {row.fingerprint} is a {row.kind} key, not a PEM key")
        return self.files.load_pem(row.file, passphrase)

    def pgp_key(self, row: KeyRecord) -> pgpy.PGPKey:
        return self.files.load_pgp(row.file)

    def history(self, key_id: int) -> tuple[key_state.Transition, ...]:
        with session_scope(self.engine) as session:
            rows = session.exec(select(KeyTransitionRecord).where(
                KeyTransitionRecord.key_id == key_id).order_by(col(KeyTransitionRecord.id)))
            return tuple(
                key_state.Transition(
                    key_state.KeyState(r.from_state) if r.from_state else None,
                    key_state.KeyState(r.to_state), r.at, r.reason)
                for r in rows)

    def transition(self, ident: str, target: key_state.KeyState, reason: str, *,
                   at: datetime | None = None) -> KeyRecord:
        row = self.get(ident)
        history = self.history(row.id or 0)
        when = at or self.clock()
        with session_scope(self.engine) as session:
            row = session.get_one(KeyRecord, row.id)
            self._append_transition(session, row, history, target, when, reason)
            audit.record(session, when, "key.transition", row.fingerprint, to=target.value,
                         reason=reason)
            return row

    def _append_transition(self, session: Session, row: KeyRecord,
                           history: tuple[key_state.Transition, ...],
                           target: key_state.KeyState, at: datetime, reason: str) -> None:
        new = key_state.transition(history, target, at=at, reason=reason)[-1]
        row.state = target.value
        session.add(row)
        session.add(KeyTransitionRecord(
            key_id=row.id or 0, from_state=new.from_state.value if new.from_state else None,
            to_state=new.to_state.value, at=new.at, reason=new.reason))
