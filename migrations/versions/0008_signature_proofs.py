"""Inventory: per signature, how many RFC 3161 tokens it carries and the proven signing time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_signatures") as batch:
        batch.add_column(sa.Column("tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("proven_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_signatures") as batch:
        batch.drop_column("proven_at")
        batch.drop_column("tokens")
