"""create heroes, children and stories

Revision ID: 0001
Revises:
Create Date: 2026-11-25 22:54:18.059445
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "children",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("age_category", sa.String(length=16), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("interests", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("gender IN ('male', 'female', 'other')", name="ck_children_gender"),
        sa.CheckConstraint("age BETWEEN 1 AND 17", name="ck_children_age"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("children", schema=None) as batch_op:
        batch_op.create_index("ix_children_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_children_name", ["name"], unique=False)
        batch_op.create_index(
            "ix_children_name_age_gender", ["name", "age", "gender"], unique=False
        )

    op.create_table(
        "heroes",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("appearance", sa.Text(), nullable=False),
        sa.Column("personality_traits", sa.JSON(), nullable=False),
        sa.Column("interests", sa.JSON(), nullable=False),
        sa.Column("strengths", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("gender IN ('male', 'female', 'other')", name="ck_heroes_gender"),
        sa.CheckConstraint("language IN ('en', 'ru')", name="ck_heroes_language"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("heroes", schema=None) as batch_op:
        batch_op.create_index("ix_heroes_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_heroes_language", ["language"], unique=False)
        batch_op.create_index("ix_heroes_name", ["name"], unique=False)

    op.create_table(
        "stories",
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("moral", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=True),
        sa.Column("hero_id", sa.Uuid(), nullable=True),
        sa.Column("child_name", sa.String(length=100), nullable=True),
        sa.Column("age_category", sa.String(length=16), nullable=True),
        sa.Column("child_gender", sa.String(length=16), nullable=True),
        sa.Column("child_interests", sa.JSON(), nullable=True),
        sa.Column("story_length", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("audio_file", sa.JSON(), nullable=True),
        sa.Column("model_used", sa.String(length=100), nullable=True),
        sa.Column("full_response", sa.JSON(), nullable=True),
        sa.Column("generation_info", sa.JSON(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('en', 'ru')", name="ck_stories_language"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 10", name="ck_stories_rating"),
        sa.CheckConstraint(
            "story_length IS NULL OR story_length BETWEEN 1 AND 60", name="ck_stories_length"
        ),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hero_id"], ["heroes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.create_index("ix_stories_child_id", ["child_id"], unique=False)
        batch_op.create_index("ix_stories_child_name", ["child_name"], unique=False)
        batch_op.create_index("ix_stories_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_stories_hero_id", ["hero_id"], unique=False)
        batch_op.create_index("ix_stories_language", ["language"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index("ix_stories_language")
        batch_op.drop_index("ix_stories_hero_id")
        batch_op.drop_index("ix_stories_created_at_id")
        batch_op.drop_index("ix_stories_child_name")
        batch_op.drop_index("ix_stories_child_id")

    op.drop_table("stories")
    with op.batch_alter_table("heroes", schema=None) as batch_op:
        batch_op.drop_index("ix_heroes_name")
        batch_op.drop_index("ix_heroes_language")
        batch_op.drop_index("ix_heroes_created_at_id")

    op.drop_table("heroes")
    with op.batch_alter_table("children", schema=None) as batch_op:
        batch_op.drop_index("ix_children_name_age_gender")
        batch_op.drop_index("ix_children_name")
        batch_op.drop_index("ix_children_created_at_id")

    op.drop_table("children")
