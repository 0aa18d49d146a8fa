from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import EntityModel


class Hero(EntityModel):
    __tablename__ = "heroes"
    __table_args__ = (
        CheckConstraint("gender IN ('male', 'female', 'other')", name="ck_heroes_gender"),
        CheckConstraint("language IN ('en', 'ru')", name="ck_heroes_language"),
        Index("ix_heroes_language", "language"),
        Index("ix_heroes_name", "name"),
        Index("ix_heroes_created_at_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    age: Mapped[int] = mapped_column(Integer, nullable=False)
    gender: Mapped[str] = mapped_column(String(16), nullable=False)
    appearance: Mapped[str] = mapped_column(Text, nullable=False, default="")
    personality_traits: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    interests: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    strengths: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    language: Mapped[str] = mapped_column(String(2), nullable=False)
