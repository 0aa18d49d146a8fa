"""cache_outbox: every write's cache invalidation, recorded in the write's transaction

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 23:59:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cache_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cache_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_cache_outbox_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cache_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_cache_outbox_created_at")
    op.drop_table("cache_outbox")
