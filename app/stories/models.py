import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import EntityModel


class Story(EntityModel):
    __tablename__ = "stories"
    __table_args__ = (
        CheckConstraint("language IN ('en', 'ru')", name="ck_stories_language"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 10", name="ck_stories_rating"),
        CheckConstraint(
            "story_length IS NULL OR story_length BETWEEN 1 AND 60",
            name="ck_stories_length",
        ),
        Index("ix_stories_child_id", "child_id"),
        Index("ix_stories_hero_id", "hero_id"),
        Index("ix_stories_child_name", "child_name"),
        Index("ix_stories_language", "language"),
        Index("ix_stories_created_at_id", "created_at", "id"),
    )

    title: Mapped[str] = mapped_column(String(300), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    moral: Mapped[str] = mapped_column(Text, nullable=False, default="")
    language: Mapped[str] = mapped_column(String(2), nullable=False)
    child_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("children.id", ondelete="CASCADE"), nullable=True
    )
    hero_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("heroes.id", ondelete="SET NULL"), nullable=True
    )
    child_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    age_category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    child_gender: Mapped[str | None] = mapped_column(String(16), nullable=True)
    child_interests: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    story_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    audio_file: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    model_used: Mapped[str | None] = mapped_column(String(100), nullable=True)
    full_response: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    generation_info: Mapped[Any | None] = mapped_column(JSON, nullable=True)
