from sqlalchemy import JSON, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import EntityModel


class Child(EntityModel):
    __tablename__ = "children"
    __table_args__ = (
        CheckConstraint("gender IN ('male', 'female', 'other')", name="ck_children_gender"),
        CheckConstraint("age BETWEEN 1 AND 17", name="ck_children_age"),
        Index("ix_children_name", "name"),
        Index("ix_children_name_age_gender", "name", "age", "gender"),
        Index("ix_children_created_at_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    age: Mapped[int] = mapped_column(Integer, nullable=False)
    age_category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    gender: Mapped[str] = mapped_column(String(16), nullable=False)
    interests: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
