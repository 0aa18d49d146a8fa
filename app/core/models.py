"""The base of every entity table: UUID id, version counter, UTC timestamps."""

import uuid
from datetime import datetime

from sqlalchemy import Integer, Uuid
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.core.database import Base, UTCDateTime, utcnow


class EntityModel(Base):
    """An entity's table. `version` is SQLAlchemy's version counter: an UPDATE whose row
    moved on meanwhile fails (409) instead of overwriting it."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, object]:
        return {"version_id_col": cls.version}
