"""cache_outbox.key_prefix: a row is applied only by processes of the writer's cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:45:00

Rows already in the table were written before the column existed; they get the default
CACHE_KEY_PREFIX (`tales:`), the prefix of every deployment that did not set one.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the default CACHE_KEY_PREFIX, for rows written before this revision
DEFAULT_PREFIX = "tales:"


def upgrade() -> None:
    with op.batch_alter_table("cache_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "key_prefix", sa.String(length=64), nullable=False, server_default=DEFAULT_PREFIX
            )
        )
        batch_op.drop_index("ix_cache_outbox_created_at")
        batch_op.create_index(
            "ix_cache_outbox_key_prefix_created_at", ["key_prefix", "created_at"], unique=False
        )
    with op.batch_alter_table("cache_outbox", schema=None) as batch_op:
        batch_op.alter_column("key_prefix", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("cache_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_cache_outbox_key_prefix_created_at")
        batch_op.create_index("ix_cache_outbox_created_at", ["created_at"], unique=False)
        batch_op.drop_column("key_prefix")
