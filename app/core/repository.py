"""The SQLAlchemy repository of every entity, driven by its declaration: reads return JSON
documents, writes only flush (the unit of work commits).

Each write records a `Change` on the unit of work (the filtered attributes before and after,
and the rows of other entities its cascades touched), so that the cache can invalidate
precisely after the commit without the repository knowing about the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import UnitOfWork
from app.core.documents import Change, Doc, RelatedChange, page_body
from app.core.errors import NotFound, PreconditionFailed
from app.core.models import EntityModel
from app.core.registry import CREATE, DELETE, UPDATE, EntitySpec, Registry

Filters = Mapping[str, Any]
"""The filters a list applies: declared filter name -> value (exact match), given ones only."""


class EntityRepository(Protocol):
    """What routers use; the SQLAlchemy repository and the cached one both provide it."""

    async def get(self, entity_id: UUID) -> Doc | None: ...
    async def list(self, filters: Filters, limit: int, offset: int) -> bytes: ...
    async def add(self, data: BaseModel) -> Doc: ...
    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: str = UPDATE,
    ) -> Doc: ...
    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None: ...


class SQLAlchemyRepository:
    def __init__(self, spec: EntitySpec, registry: Registry, uow: UnitOfWork) -> None:
        self.spec = spec
        self.registry = registry
        self.uow = uow

    @property
    def session(self) -> AsyncSession:
        return self.uow.session

    # -- serialization -------------------------------------------------------------------
    def to_doc(self, obj: EntityModel) -> Doc:
        read = self.spec.read
        body = read.__pydantic_serializer__.to_json(read.model_validate(obj))
        return Doc(obj.id, obj.version, body)

    def _indexed(self, obj: EntityModel) -> dict[str, object]:
        return {name: getattr(obj, name) for name in self.spec.indexed}

    def _record(
        self,
        op: str,
        obj: EntityModel,
        before: Mapping[str, object] | None,
        *,
        deleted: bool = False,
        related: list[RelatedChange] | None = None,
    ) -> None:
        self.uow.changes.append(
            Change(
                entity=self.spec.name,
                op=op,
                id=obj.id,
                version=None if deleted else obj.version,
                before=before,
                after=None if deleted else self._indexed(obj),
                related=tuple(related or ()),
            )
        )

    # -- reads ---------------------------------------------------------------------------
    async def _load(self, entity_id: UUID, *, for_update: bool = False) -> EntityModel:
        model = self.spec.model
        stmt = select(model).where(model.id == entity_id)
        if for_update:
            stmt = stmt.with_for_update()
        obj = (await self.session.execute(stmt)).scalar_one_or_none()
        if obj is None:
            raise NotFound.of(self.spec.name, entity_id)
        return obj

    async def get(self, entity_id: UUID) -> Doc | None:
        obj = await self.session.get(self.spec.model, entity_id)
        return None if obj is None else self.to_doc(obj)

    def _filtered(self, stmt: Select[Any], filters: Filters) -> Select[Any]:
        for name, value in filters.items():
            stmt = stmt.where(getattr(self.spec.model, name) == value)
        return stmt

    async def list(self, filters: Filters, limit: int, offset: int) -> bytes:
        model = self.spec.model
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
    def _check_version(obj: EntityModel, expected_version: int | None) -> None:
        if expected_version is not None and obj.version != expected_version:
            raise PreconditionFailed(f"If-Match does not match the current version ({obj.version})")

    async def _prepare(self, values: dict[str, Any], current: EntityModel | None) -> dict[str, Any]:
        if self.spec.prepare is None:
            return values
        return await self.spec.prepare(self.session, values, current)

    async def add(self, data: BaseModel) -> Doc:
        values = await self._prepare(data.model_dump(), None)
        obj = self.spec.model(**values)
        self.session.add(obj)
        await self.session.flush()
        self._record(CREATE, obj, None)
        return self.to_doc(obj)

    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: str = UPDATE,
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
            related = []
            for cascade in self.registry.cascades_from(self.spec.name, UPDATE):
                if not cascade.when_changed or changed & cascade.when_changed:
                    related += await cascade.apply(self.session, obj)
            self._record(op, obj, before, related=related)
        return self.to_doc(obj)

    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None:
        obj = await self._load(entity_id, for_update=True)
        self._check_version(obj, expected_version)
        before = self._indexed(obj)
        related = []
        for cascade in self.registry.cascades_from(self.spec.name, DELETE):
            related += await cascade.apply(self.session, obj)
        await self.session.delete(obj)
        await self.session.flush()
        self._record(DELETE, obj, before, deleted=True, related=related)
