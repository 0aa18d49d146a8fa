"""The SQLAlchemy repository every entity shares: reads return `Doc`s, writes only flush.

Each write records a `Change` on the unit of work (indexed attributes before and after, and
rows of other entities it touched) so that a caching decorator can invalidate precisely after
the commit, without the repository knowing about the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Base, UnitOfWork
from app.core.documents import Change, Doc, Operation, RelatedChange, page_body
from app.core.errors import NotFound, PreconditionFailed

ModelT = TypeVar("ModelT", bound=Base)


@dataclass(frozen=True, slots=True)
class Filters:
    """Base of each entity's list filters: only fields that are not None apply (exact match)."""

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


FiltersT = TypeVar("FiltersT", bound=Filters)


class Finders:
    """Base of an entity's named finders (the seed's `find_by_language`, ...).

    Finders are list queries with fixed filters. The same mixin sits on the SQLAlchemy
    repository and on its cached counterpart, so a finder is cached like any list.
    """

    if TYPE_CHECKING:  # provided by the repository the mixin is combined with

        async def list(self, filters: Any, limit: int, offset: int) -> bytes: ...


class SQLAlchemyRepository(Generic[ModelT, FiltersT]):
    finders: ClassVar[type[Finders]] = Finders
    entity: ClassVar[str]
    model: ClassVar[type[Base]]
    read_schema: ClassVar[type[BaseModel]]
    indexed_attributes: ClassVar[tuple[str, ...]]

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    @property
    def session(self) -> AsyncSession:
        return self.uow.session

    # -- serialization -------------------------------------------------------------------
    def to_doc(self, obj: ModelT) -> Doc:
        model = self.read_schema.model_validate(obj)
        body = self.read_schema.__pydantic_serializer__.to_json(model)
        return Doc(obj.id, obj.version, body)  # type: ignore[attr-defined]

    def _indexed(self, obj: ModelT) -> dict[str, object]:
        return {name: getattr(obj, name) for name in self.indexed_attributes}

    def _record(
        self,
        op: Operation,
        obj: ModelT,
        before: Mapping[str, object] | None,
        *,
        deleted: bool = False,
        related: Sequence[RelatedChange] = (),
    ) -> None:
        self.uow.changes.append(
            Change(
                entity=self.entity,
                op=op,
                id=obj.id,  # type: ignore[attr-defined]
                version=None if deleted else obj.version,  # type: ignore[attr-defined]
                before=before,
                after=None if deleted else self._indexed(obj),
                related=tuple(related),
            )
        )

    # -- reads ---------------------------------------------------------------------------
    async def _load(self, entity_id: UUID, *, for_update: bool = False) -> ModelT:
        stmt = select(self.model).where(self.model.id == entity_id)  # type: ignore[attr-defined]
        if for_update:
            stmt = stmt.with_for_update()
        obj = (await self.session.execute(stmt)).scalar_one_or_none()
        if obj is None:
            raise NotFound(f"{self.entity} {entity_id} not found")
        return obj  # type: ignore[return-value]

    async def get(self, entity_id: UUID) -> Doc | None:
        obj = await self.session.get(self.model, entity_id)
        return None if obj is None else self.to_doc(obj)  # type: ignore[arg-type]

    def _filtered(self, stmt: Select[Any], filters: FiltersT) -> Select[Any]:
        for name, value in filters.given().items():
            stmt = stmt.where(getattr(self.model, name) == value)
        return stmt

    async def list(self, filters: FiltersT, limit: int, offset: int) -> bytes:
        model: Any = self.model
        rows = (
            await self.session.execute(
                self._filtered(select(model), filters)
                .order_by(model.created_at.desc(), model.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        total = await self.session.scalar(
            self._filtered(select(func.count()).select_from(model), filters)
        )
        return page_body([self.to_doc(obj).body for obj in rows], total or 0, limit, offset)

    # -- writes --------------------------------------------------------------------------
    @staticmethod
    def _check_version(obj: Any, expected_version: int | None) -> None:
        if expected_version is not None and obj.version != expected_version:
            raise PreconditionFailed(f"If-Match does not match the current version ({obj.version})")

    async def _prepare(self, values: dict[str, Any], current: ModelT | None) -> dict[str, Any]:
        """Validate references and derive fields before the values are applied."""
        return values

    async def _propagate(self, obj: ModelT, changed: set[str]) -> list[RelatedChange]:
        """Write the consequences of an update to other rows (same transaction)."""
        return []

    async def _detach_dependents(self, obj: ModelT) -> list[RelatedChange]:
        """Delete or detach rows that depend on `obj` before it is deleted."""
        return []

    async def add(self, data: BaseModel) -> Doc:
        values = await self._prepare(data.model_dump(), None)
        obj = self.model(**values)
        self.session.add(obj)
        await self.session.flush()
        self._record("create", obj, None)  # type: ignore[arg-type]
        return self.to_doc(obj)  # type: ignore[arg-type]

    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: Operation = "update",
    ) -> Doc:
        obj = await self._load(entity_id)
        self._check_version(obj, expected_version)
        before = self._indexed(obj)
        values = await self._prepare(changes, obj)
        changed = {name for name, value in values.items() if getattr(obj, name) != value}
        if changed:
            for name in changed:
                setattr(obj, name, values[name])
            await self.session.flush()
            related = await self._propagate(obj, changed)
            self._record(op, obj, before, related=related)
        return self.to_doc(obj)

    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None:
        obj = await self._load(entity_id, for_update=True)
        self._check_version(obj, expected_version)
        before = self._indexed(obj)
        related = await self._detach_dependents(obj)
        await self.session.delete(obj)
        await self.session.flush()
        self._record("delete", obj, before, deleted=True, related=related)
