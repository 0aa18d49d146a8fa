"""What a committed write invalidates: one table for all entities.

A write first commits, then (before the response is sent) sends one INVALIDATE script:
post-write markers on the entries it changed and generation moves for the list scopes the
row left or joined. Rows of other entities that the write changed in the same transaction
(a child's stories follow its snapshot, are deleted with it; a hero's stories lose their
hero_id) are invalidated as the `related` column says.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.cache.scripts import DELETED_VERSION
from app.cache.service import Marker
from app.cache.strategy import EntityKeys
from app.core.documents import Change


@dataclass(frozen=True, slots=True)
class Rule:
    entry: bool  # mark the written entity's own entry
    lists: bool  # move the `all` scope and the scopes of the row before and after
    related_entries: bool = False  # mark the entries of the related rows
    related_all_lists: bool = False  # move every list of the related entity (family counter)


_ROW = Rule(entry=True, lists=True)
_ROW_AND_STORIES = Rule(entry=True, lists=True, related_entries=True, related_all_lists=True)

#: (entity, operation) -> what is invalidated. Every row is tested over HTTP.
INVALIDATION_RULES: Mapping[tuple[str, str], Rule] = {
    ("hero", "create"): Rule(entry=False, lists=True),
    ("hero", "update"): _ROW,
    ("hero", "delete"): _ROW_AND_STORIES,  # stories: hero_id set to null
    ("child", "create"): Rule(entry=False, lists=True),
    ("child", "update"): _ROW_AND_STORIES,  # stories: child_* snapshot follows
    ("child", "delete"): _ROW_AND_STORIES,  # stories: deleted with the child
    ("story", "create"): Rule(entry=False, lists=True),
    ("story", "update"): _ROW,
    ("story", "rate"): _ROW,
    ("story", "delete"): _ROW,
}


@dataclass
class InvalidationPlan:
    markers: list[Marker]
    counters: set[str]


def plan_invalidation(
    changes: Iterable[Change], keys: Mapping[str, EntityKeys], ttls: Mapping[str, int]
) -> InvalidationPlan:
    plan = InvalidationPlan([], set())
    for change in changes:
        rule = INVALIDATION_RULES[(change.entity, change.op)]
        own = keys[change.entity]
        if rule.entry:
            version = DELETED_VERSION if change.version is None else change.version
            plan.markers.append(Marker(own.entry(change.id), version, ttls[change.entity]))
        if rule.lists:
            plan.counters.add(own.generation(own.all_scope()))
            for scope in own.scopes_touched(change.before) | own.scopes_touched(change.after):
                plan.counters.add(own.generation(scope))
        for related in change.related:
            other = keys[related.entity]
            if rule.related_entries:
                version = DELETED_VERSION if related.version is None else related.version
                plan.markers.append(Marker(other.entry(related.id), version, ttls[related.entity]))
            if rule.related_all_lists:
                plan.counters.add(other.family)
    return plan
