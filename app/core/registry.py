"""The entity registry: each entity is declared once, as an `EntitySpec`.

Everything else is derived from the declarations: the CRUD routes and their list query
models, the repository's filters, the cache's list scopes and keys, the invalidation of a
write, the `CACHE_<NAME>_TTL` settings, the entity lists of the stats and flush endpoints,
and the seed's tables. `app/entities.py` lists the service's entities; adding one is a new
package with its model, schemas and one `EntitySpec`, named there.

A rule that crosses entities is a `Cascade`, declared by the entity whose rows it changes
(as a foreign key's ON UPDATE / ON DELETE is declared on the referring table), so entity
packages depend only on the entities they refer to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.documents import RelatedChange
from app.core.models import EntityModel
from app.core.schemas import (
    EntityRead,
    InputModel,
    NoNul,
    Page,
    QueryInt,
    QueryModel,
    patch_model,
)

#: Paging of every list route.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000

#: The operations a repository records for every entity; actions add their own names.
CREATE, UPDATE, DELETE = "create", "update", "delete"

Prepare = Callable[[AsyncSession, dict[str, Any], Any], Awaitable[dict[str, Any]]]
"""(session, values to write, current row or None on create) -> the values to apply."""

CascadeApply = Callable[[AsyncSession, Any], Awaitable[list[RelatedChange]]]
"""(session, the source row after an update / before a delete) -> the rows it changed."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A list filter: exact match of the query parameter on the model attribute `name`."""

    name: str
    annotation: Any  # its type in the query string
    field: FieldInfo | None = None  # constraints and description, `Field(max_length=100)`
    scope: str | None = None  # label of its own list scope (generation counter), if any
    personal: bool = False  # personal data: only ever a keyed hash in cache keys


@dataclass(frozen=True, slots=True)
class Cascade:
    """A write to `source` changes rows of the declaring entity in the same transaction."""

    source: str  # the entity whose write triggers it
    on: Literal["update", "delete"]
    apply: CascadeApply
    when_changed: frozenset[str] = frozenset()  # update: only if one of these changed


@dataclass(frozen=True, slots=True)
class Action:
    """A write route beside CRUD: `PUT {collection}/{id}/{path}` applies the body's fields
    and is recorded (and invalidated) as an update named `op`."""

    path: str
    body: type[InputModel]
    op: str
    summary: str


@dataclass(frozen=True)
class EntitySpec:
    name: str  # "hero": cache key segment, stats and metrics label
    plural: str  # "heroes": collection path and tag
    model: type[EntityModel]
    create: type[InputModel]
    read: type[EntityRead]
    filters: tuple[Filter, ...] = ()  # scopes most selective first
    exact_match: tuple[str, ...] = ()  # filters that, given together, form one list family
    ttl: int | None = None  # default of CACHE_<NAME>_TTL in seconds (None: CACHE_DEFAULT_TTL)
    cascades: tuple[Cascade, ...] = ()
    prepare: Prepare | None = None  # validates references, derives fields
    actions: tuple[Action, ...] = ()
    patch: type[InputModel] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch", patch_model(self.create, f"{self.model.__name__}Patch"))

    @property
    def path(self) -> str:
        return f"/api/v1/{self.plural}"

    @property
    def ttl_setting(self) -> str:
        """The Settings field (and, upper-cased, the environment variable) of its TTL."""
        return f"cache_{self.name}_ttl"

    @cached_property
    def indexed(self) -> tuple[str, ...]:
        """Attributes a write records before and after: they decide the lists it touches."""
        return tuple(f.name for f in self.filters)

    @cached_property
    def scopes(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.scope is not None)

    @cached_property
    def personal(self) -> frozenset[str]:
        return frozenset(f.name for f in self.filters if f.personal)

    @cached_property
    def list_query(self) -> type[QueryModel]:
        """The list route's query parameters: every filter (optional) plus paging."""
        # A filter left out is None, but the schema does not offer null: a query string
        # cannot send one. Its constraints apply to the value's own type.
        fields: dict[str, Any] = {
            f.name: (_query_type(f.annotation), _optional(f.field)) for f in self.filters
        }
        fields["limit"] = (QueryInt, Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT))
        fields["offset"] = (QueryInt, Field(0, ge=0, le=MAX_OFFSET))
        name = f"{self.model.__name__}ListQuery"
        model: type[QueryModel] = create_model(name, __base__=QueryModel, **fields)
        return model

    @cached_property
    def page_schema(self) -> type[BaseModel]:
        """The list route's response: `Page[<read schema>]`."""
        page: type[BaseModel] = Page[self.read]  # type: ignore[name-defined]  # built at run time
        return page


def _optional(info: FieldInfo | None) -> FieldInfo:
    """A filter's field, constraints kept, None when left out."""
    if info is None:
        info = FieldInfo()
    return FieldInfo.merge_field_infos(info, default=None)


def _query_type(annotation: Any) -> Any:
    """A filter's type as the query string is parsed: integers strictly (`QueryInt`), text
    without NUL (stated in the schema)."""
    if annotation is int:
        return QueryInt
    if annotation is str:
        return Annotated[str, NoNul()]
    return annotation


class Registry:
    """The declared entities, validated once: a mistake fails at start-up, naming it."""

    def __init__(self, specs: Sequence[EntitySpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        if len(self._specs) != len(specs):
            raise ValueError("two entities share a name")
        for spec in specs:
            columns = set(spec.model.__table__.columns.keys())
            for name in spec.indexed:
                if name not in columns:
                    raise ValueError(f"{spec.name}: filter {name!r} is not a column")
            if not set(spec.exact_match) <= set(spec.indexed):
                raise ValueError(f"{spec.name}: exact_match names a field that is no filter")
            for cascade in spec.cascades:
                if cascade.source not in self._specs:
                    raise ValueError(f"{spec.name}: cascade from unknown {cascade.source!r}")

    def __iter__(self) -> Iterator[EntitySpec]:
        return iter(self._specs.values())

    def __getitem__(self, name: str) -> EntitySpec:
        return self._specs[name]

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def by_plural(self) -> Mapping[str, EntitySpec]:
        return {spec.plural: spec for spec in self}

    def cascades_from(self, source: str, on: str) -> list[Cascade]:
        """The cascades a write of `on` to `source` runs, in declaration order."""
        return [c for spec in self for c in spec.cascades if c.source == source and c.on == on]
