"""What a committed write invalidates, derived from the entity declarations.

A write first commits, then (before the response is sent) sends one INVALIDATE script:
post-write markers on the entries it changed and generation moves for the list scopes the
row left or joined. Rows of other entities that its cascades changed in the same transaction
(a child's stories follow its snapshot or are deleted with it; a hero's stories lose their
hero_id) get markers too, and every list of their entity moves (its family generation).

`invalidation_rules(registry)` is the resulting table, one row per (entity, operation):
the README shows it and every row is tested over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.cache.format import DELETED_VERSION, EntityKeys
from app.cache.keys import SaltUnknown
from app.cache.service import Marker
from app.core.documents import Change
from app.core.registry import CREATE, DELETE, UPDATE, Registry


@dataclass(frozen=True, slots=True)
class Rule:
    entry: bool  # mark the written entity's own entry
    lists: bool  # move the `all` scope and the scopes of the row before and after
    related: bool = False  # mark the entries of the rows cascades changed, move their lists


def invalidation_rules(registry: Registry) -> dict[tuple[str, str], Rule]:
    rules: dict[tuple[str, str], Rule] = {}
    for spec in registry:
        cascades_on = {c.on for other in registry for c in other.cascades if c.source == spec.name}
        rules[(spec.name, CREATE)] = Rule(entry=False, lists=True)
        for op in (UPDATE, *(action.op for action in spec.actions)):
            rules[(spec.name, op)] = Rule(entry=True, lists=True, related=UPDATE in cascades_on)
        rules[(spec.name, DELETE)] = Rule(entry=True, lists=True, related=DELETE in cascades_on)
    return rules


@dataclass
class InvalidationPlan:
    markers: list[Marker] = field(default_factory=list)
    counters: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)  # whose cached values it touches


def plan_invalidation(
    changes: Iterable[Change],
    rules: Mapping[tuple[str, str], Rule],
    keys: Mapping[str, EntityKeys],
    ttls: Mapping[str, int],
) -> InvalidationPlan:
    plan = InvalidationPlan()
    for change in changes:
        rule = rules[(change.entity, change.op)]
        own = keys[change.entity]
        plan.entities.add(change.entity)
        if rule.entry:
            version = DELETED_VERSION if change.version is None else change.version
            plan.markers.append(Marker(own.entry(change.id), version, ttls[change.entity]))
        if rule.lists:
            plan.counters.add(own.generation(own.all_scope()))
            try:
                scopes = own.scopes_touched(change.before) | own.scopes_touched(change.after)
            except SaltUnknown:  # a personal scope cannot be named yet: every list moves
                scopes = set()
                plan.counters.add(own.family)
            for scope in scopes:
                plan.counters.add(own.generation(scope))
        if rule.related:
            for related in change.related:
                other = keys[related.entity]
                version = DELETED_VERSION if related.version is None else related.version
                plan.markers.append(Marker(other.entry(related.id), version, ttls[related.entity]))
                plan.counters.add(other.family)
                plan.entities.add(related.entity)
    return plan
