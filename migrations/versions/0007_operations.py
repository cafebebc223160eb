"""Operations: each image's set (metrics count by set), job success times, sent notifications,
and the indexes that keep a /metrics scrape independent of the number of images.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_set", sa.String(length=100), nullable=True))
        batch_op.create_index("ix_images_image_set_status", ["image_set", "status"], unique=False)
    with op.batch_alter_table("service_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_success", _TIME, nullable=True))
        batch_op.add_column(sa.Column("last_failure", _TIME, nullable=True))
    op.create_index("ix_work_items_state_kind", "work_items", ["state", "kind"], unique=False)
    op.create_index("ix_certificates_role_key_id", "certificates", ["role", "key_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("condition", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", _TIME, nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("condition"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_index("ix_work_items_state_kind", table_name="work_items")
    op.drop_index("ix_certificates_role_key_id", table_name="certificates")
    with op.batch_alter_table("service_jobs", schema=None) as batch_op:
        batch_op.drop_column("last_failure")
        batch_op.drop_column("last_success")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_image_set_status")
        batch_op.drop_column("image_set")
