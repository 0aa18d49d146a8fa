"""What a write invalidates, planned from the entity declarations (no Redis here; every
row is also tested over HTTP in tests/cache/test_invalidation_rules.py)."""

import uuid

from app.cache.format import DELETED_VERSION, EntityKeys
from app.cache.invalidation import Rule, invalidation_rules, plan_invalidation
from app.cache.keys import KeyEncoder
from app.core.documents import Change, RelatedChange
from app.entities import ENTITIES

RULES = invalidation_rules(ENTITIES)
KEYS = {spec.name: EntityKeys(spec, "tales:", KeyEncoder(b"k")) for spec in ENTITIES}
TTLS = {"hero": 3600, "child": 1800, "story": 600}
ROW = Rule(entry=True, lists=True)
WITH_RELATED = Rule(entry=True, lists=True, related=True)


def test_the_rules_follow_from_the_declared_cascades() -> None:
    derived = invalidation_rules(ENTITIES)
    assert derived == {
        ("hero", "create"): Rule(entry=False, lists=True),
        ("hero", "update"): ROW,
        ("hero", "delete"): WITH_RELATED,  # stories: hero_id set to null
        ("child", "create"): Rule(entry=False, lists=True),
        ("child", "update"): WITH_RELATED,  # stories: the snapshot follows
        ("child", "delete"): WITH_RELATED,  # stories: deleted with the child
        ("story", "create"): Rule(entry=False, lists=True),
        ("story", "update"): ROW,
        ("story", "rate"): ROW,
        ("story", "delete"): ROW,
    }


def plan(*changes: Change):
    return plan_invalidation(changes, RULES, KEYS, TTLS)


def test_an_update_marks_the_entry_and_moves_the_lists_the_row_left_and_joined() -> None:
    hero_id = uuid.uuid4()
    change = Change(
        "hero",
        "update",
        hero_id,
        4,
        {"name": "Max", "language": "en"},
        {"name": "Max", "language": "ru"},
    )
    result = plan(change)
    assert [(m.key, m.version, m.ttl) for m in result.markers] == [
        (KEYS["hero"].entry(hero_id), 4, 3600)
    ]
    assert result.counters == {
        "tales:gen:{hero.pages}:all",
        "tales:gen:{hero.pages}:name:Max",
        "tales:gen:{hero.pages}:lang:en",
        "tales:gen:{hero.pages}:lang:ru",
    }
    assert result.entities == {"hero"}


def test_a_create_moves_lists_only() -> None:
    result = plan(Change("hero", "create", uuid.uuid4(), 1, None, {"name": "A", "language": "en"}))
    assert result.markers == []
    assert "tales:gen:{hero.pages}:lang:en" in result.counters


def test_a_delete_leaves_a_delete_marker_and_reaches_the_rows_its_cascades_changed() -> None:
    child_id, story_id = uuid.uuid4(), uuid.uuid4()
    before = {"name": "Ann", "age": 5, "gender": "female"}
    change = Change(
        "child",
        "delete",
        child_id,
        None,
        before,
        None,
        (RelatedChange("story", story_id, None),),
    )
    result = plan(change)
    assert {(m.key, m.version) for m in result.markers} == {
        (KEYS["child"].entry(child_id), DELETED_VERSION),
        (KEYS["story"].entry(story_id), DELETED_VERSION),
    }
    assert "tales:gen:{story.pages}" in result.counters  # every story list
    assert result.entities == {"child", "story"}


def test_without_a_known_salt_a_child_write_moves_every_child_list() -> None:
    """The key salt not read from Redis yet: the name's scope cannot be named, so the whole
    child list family moves (never an unkeyed hash of the name)."""
    unsalted = {spec.name: EntityKeys(spec, "tales:", KeyEncoder()) for spec in ENTITIES}
    child_id = uuid.uuid4()
    change = Change("child", "create", child_id, 1, None, {"name": "Zoë", "age": 5})
    result = plan_invalidation([change], RULES, unsalted, TTLS)
    assert result.counters == {"tales:gen:{child.pages}:all", "tales:gen:{child.pages}"}
    assert not [key for key in result.counters if "#" in key or "Zo" in key]
