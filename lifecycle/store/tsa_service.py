"""The local time-stamping authority with its state in the store.

Its certificate (role ``tsa``, EKU timeStamping, critical) is issued by the CA's intermediate
and its key is kept encrypted in the key directory like every CA key (``CaService.issue_tsa``).
Token serials come from the ``tsa_serials`` row: a block is reserved in one transaction and
handed out from memory, so serials only grow (across restarts and servers sharing the
database) and a request costs no database write. A crash loses at most the rest of a block.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from lifecycle.clock import Clock
from lifecycle.store.ca_service import INTERMEDIATE, TSA, CaService
from lifecycle.store.db import session_scope
from lifecycle.store.models import TsaSerialRecord
from lifecycle.timestamp.authority import DEFAULT_ACCURACY, TimestampAuthority, TsaIdentity

SERIAL_BLOCK = 1000
DEFAULT_TSA_LIFETIME = timedelta(days=3 * 365)


class SerialSource:
    """Monotonic serials reserved from the store ``block`` at a time (thread-safe)."""

    def __init__(self, ca: CaService, block: int = SERIAL_BLOCK) -> None:
        self.engine = ca.engine
        self.block = block
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0

    def _reserve(self) -> None:
        with session_scope(self.engine) as session:
            row = session.exec(select(TsaSerialRecord).with_for_update()).first()
            if row is None:
                row = TsaSerialRecord(id=1, next_serial=1)
            self._next, self._end = row.next_serial, row.next_serial + self.block
            row.next_serial = self._end
            session.add(row)

    def __call__(self) -> int:
        with self._lock:
            if self._next >= self._end:
                self._reserve()
            serial = self._next
            self._next += 1
            return serial


def local_tsa(ca: CaService, clock: Clock, *, accuracy: timedelta = DEFAULT_ACCURACY,
              lifetime: timedelta = DEFAULT_TSA_LIFETIME) -> TimestampAuthority:
    """The local TSA; its certificate is issued on first use, and again once it has expired."""
    now = clock()
    if not ca.has_role(TSA) or ca.certificate(TSA).not_valid_after_utc <= now:
        ca.issue_tsa(lifetime, now=now)
    cert, key = ca.signer(TSA)
    identity = TsaIdentity(key, cert, (ca.certificate(INTERMEDIATE),))
    return TimestampAuthority(identity, SerialSource(ca), clock, accuracy=accuracy)

