"""Per-entity cache strategy: key patterns, TTL, list scopes and serialization.

Each entity declares one `CacheStrategy` (in its own package); the cached repository, the
invalidation rules and the admin flush are the same code for all of them.
"""

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app.cache.keys import KeyEncoder
from app.core.documents import Doc

_ENTRY_HEAD = re.compile(
    rb'\{"state":"entry","epoch":\d+,"version":(\d+),"cached_at":"[^"]*",'
    rb'"expires_ms":(\d+),"ttl":\d+,"load_ms":(\d+),"size":(\d+),"entity":'
)


@dataclass(frozen=True, slots=True)
class ListScope:
    """A list family keyed by one filter: `hero:lang:{language}` has label `lang`."""

    label: str
    attribute: str


@dataclass(frozen=True)
class CacheStrategy:
    entity: str  # "hero": key segment, stats and metrics label
    ttl_setting: str  # name of the Settings field holding its TTL
    list_scopes: tuple[ListScope, ...] = ()  # most selective first
    exact_match: tuple[str, ...] = ()  # filters that together form the `exact` list key
    personal_attributes: frozenset[str] = frozenset()  # always hashed in keys


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Where one list query's page lives: its key base and the counters it depends on."""

    base: str  # key without epoch/generation suffix
    scope: str  # e.g. "hero:lang:en" - the generation counter this page depends on


class EntityKeys:
    """The keys of one entity under the service prefix."""

    def __init__(self, strategy: CacheStrategy, prefix: str, encoder: KeyEncoder) -> None:
        self.strategy = strategy
        self.prefix = prefix
        self.encoder = encoder
        self.namespace = f"{prefix}{strategy.entity}:"
        self.epoch = f"{prefix}epoch:{strategy.entity}"
        self.family = f"{prefix}gen:{strategy.entity}"

    def entry(self, entity_id: UUID) -> str:
        return f"{self.namespace}{entity_id}"

    def lease(self, key: str) -> str:
        return f"{self.prefix}lease:{key.removeprefix(self.prefix)}"

    def generation(self, scope: str) -> str:
        return f"{self.prefix}gen:{scope}"

    def _value(self, attribute: str, value: object) -> str:
        personal = attribute in self.strategy.personal_attributes
        return self.encoder.encode(value, personal=personal)

    def scope_of(self, attribute: str, value: object) -> str:
        for scope in self.strategy.list_scopes:
            if scope.attribute == attribute:
                return f"{self.strategy.entity}:{scope.label}:{self._value(attribute, value)}"
        raise KeyError(attribute)

    def all_scope(self) -> str:
        return f"{self.strategy.entity}:all"

    def scopes_touched(self, indexed: Mapping[str, object] | None) -> set[str]:
        """The list scopes a row with these indexed attribute values belongs to."""
        if indexed is None:
            return set()
        return {
            self.scope_of(scope.attribute, indexed[scope.attribute])
            for scope in self.strategy.list_scopes
            if indexed.get(scope.attribute) is not None
        }

    def page(self, filters: Mapping[str, Any], limit: int, offset: int) -> PageQuery:
        strategy = self.strategy
        scope = next((s for s in strategy.list_scopes if s.attribute in filters), None)
        scope_key = (
            self.scope_of(scope.attribute, filters[scope.attribute]) if scope else self.all_scope()
        )
        if strategy.exact_match and set(strategy.exact_match) == set(filters):
            label = "exact:" + ":".join(
                self._value(name, filters[name]) for name in strategy.exact_match
            )
            rest: dict[str, Any] = {}
        else:
            label = scope_key.removeprefix(f"{strategy.entity}:")
            rest = {k: v for k, v in filters.items() if scope is None or k != scope.attribute}
        extra = "".join(f":{k}={self._value(k, v)}" for k, v in sorted(rest.items()))
        return PageQuery(f"{self.namespace}{label}{extra}:l{limit}:o{offset}", scope_key)


def envelope(epoch: bytes, version: int, ttl: int, load_ms: int, body: bytes) -> bytes:
    """The stored form: readable JSON with metadata, the entity's bytes embedded as they are."""
    now = time.time()
    cached_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    head = (
        f'{{"state":"entry","epoch":{epoch.decode()},"version":{version},'
        f'"cached_at":"{cached_at.replace("+00:00", "Z")}","expires_ms":{int((now + ttl) * 1000)},'
        f'"ttl":{ttl},"load_ms":{load_ms},"size":{len(body)},"entity":'
    )
    return head.encode() + body + b"}"


@dataclass(frozen=True, slots=True)
class Unwrapped:
    version: int
    expires_ms: int
    load_ms: int
    body: bytes


def unwrap(value: bytes) -> Unwrapped | None:
    """The hit path: slice the stored bytes, no JSON decoding. None if the shape is wrong
    (unknown header, or a size that does not match: a truncated or padded value)."""
    match = _ENTRY_HEAD.match(value)
    if match is None or len(value) - match.end() - 1 != int(match[4]) or value[-1:] != b"}":
        return None
    return Unwrapped(int(match[1]), int(match[2]), int(match[3]), value[match.end() : -1])


def doc_from(entity_id: UUID, unwrapped: Unwrapped) -> Doc:
    return Doc(entity_id, unwrapped.version, unwrapped.body)
