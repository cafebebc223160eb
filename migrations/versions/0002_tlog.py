"""Transparency log: entries, stored subtree hashes, and the log"s identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tlog_entry",
        sa.Column(
            "idx", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("image_id", sa.String(), nullable=False),
        sa.Column("integrated_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    with op.batch_alter_table("tlog_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tlog_entry_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tlog_entry_leaf_hash"), ["leaf_hash"], unique=False)

    op.create_table(
        "tlog_hash",
        sa.Column(
            "idx", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "tlog_meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("tlog_meta")
    op.drop_table("tlog_hash")
    with op.batch_alter_table("tlog_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tlog_entry_leaf_hash"))
        batch_op.drop_index(batch_op.f("ix_tlog_entry_image_id"))

    op.drop_table("tlog_entry")
