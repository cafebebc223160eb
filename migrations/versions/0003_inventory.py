"""Inventory: images, their signatures and events; which keys sign for which image set.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("sif_id", sa.String(length=36), nullable=False),
        sa.Column("groups", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("digests", sa.Text(), nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("last_verified", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    op.create_index("ix_images_status", "images", ["status"])
    op.create_table(
        "image_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("signer", sa.String(length=100), nullable=False),
        sa.Column("covered", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id", "object_id", "signer"),
    )
    op.create_index("ix_image_signatures_image_id", "image_signatures", ["image_id"])
    op.create_table(
        "image_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_image_events_image_id", "image_events", ["image_id"])
    op.create_index("ix_image_events_at", "image_events", ["at"])
    op.create_table(
        "image_set_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_set", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_set", "key_id"),
    )
    op.create_index("ix_image_set_keys_image_set", "image_set_keys", ["image_set"])
    op.create_index("ix_image_set_keys_key_id", "image_set_keys", ["key_id"])


def downgrade() -> None:
    op.drop_table("image_set_keys")
    op.drop_table("image_events")
    op.drop_table("image_signatures")
    op.drop_table("images")
