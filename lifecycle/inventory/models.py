"""Tables of the inventory: images, their signatures (one row per signer) and events.

``digests`` is the JSON map of object ID to ``sha256:hex`` of every non-signature object, taken
the first time the image was seen: a key compromise later re-signs only images that still match.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from lifecycle.store.db import UTCDateTime


class ImageRecord(SQLModel, table=True):
    __tablename__ = "images"
    # counting images by set and status (/metrics) reads this index only
    __table_args__ = (Index("ix_images_image_set_status", "image_set", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    mtime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    inode: int = Field(sa_column=Column(BigInteger, nullable=False))
    sif_id: str = Field(max_length=36)
    groups: str = Field(max_length=255)  # comma-separated group IDs
    status: str = Field(max_length=16, index=True)  # an ImageStatus
    digests: str = Field(sa_column=Column(Text, nullable=False))
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    last_verified: datetime | None = Field(default=None, sa_type=UTCDateTime)
    image_set: str | None = Field(default=None, max_length=100)
    """The managed set whose globs matched at the last scan (None: in none, or not scanned since)."""


class ImageSignatureRecord(SQLModel, table=True):
    __tablename__ = "image_signatures"
    __table_args__ = (UniqueConstraint("image_id", "object_id", "signer"),)

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="images.id", index=True)
    object_id: int
    group_id: int
    format: str = Field(max_length=8)  # dsse, pgp, legacy, unknown
    signer: str = Field(max_length=100)  # DSSE keyid or PGP fingerprint
    covered: str = Field(max_length=255)  # comma-separated object IDs the signed metadata lists


class ImageEventRecord(SQLModel, table=True):
    __tablename__ = "image_events"

    id: int | None = Field(default=None, primary_key=True)
    image_id: int | None = Field(default=None, foreign_key="images.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    kind: str = Field(max_length=32)  # an ImageEvent
    detail: str = Field(sa_column=Column(Text, nullable=False, default=""))


class SetKeyRecord(SQLModel, table=True):
    """Which store key signs for which image set (a set has many over its life)."""

    __tablename__ = "image_set_keys"
    __table_args__ = (UniqueConstraint("image_set", "key_id"),)

    id: int | None = Field(default=None, primary_key=True)
    image_set: str = Field(max_length=100, index=True)
    key_id: int = Field(foreign_key="keys.id", index=True)
    added_at: datetime = Field(sa_type=UTCDateTime)
