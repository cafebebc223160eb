"""Transparency log: signing intents, to find entries whose image signature was never written.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tlog_intent",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("image_path", sa.String(), nullable=False),
        sa.Column("image_id", sa.String(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.String(), nullable=False),
        sa.Column("completed", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tlog_intent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tlog_intent_completed"), ["completed"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tlog_intent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tlog_intent_completed"))
    op.drop_table("tlog_intent")
