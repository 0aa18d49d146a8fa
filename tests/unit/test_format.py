"""The stored format (`app/cache/format.py`): values, key families, what the scripts read."""

import re
import uuid
from pathlib import Path

import pytest

from app.cache import format, scripts
from app.cache.keys import KeyEncoder
from app.entities import ENTITIES

ROOT = Path(__file__).resolve().parents[2]
HERO_ID = uuid.UUID("3f2b8c1e-5d4a-4b6f-9e1d-2a7c8b9d0e1f")


def test_an_entry_round_trips_with_its_metadata() -> None:
    body = b'{"id":"x","name":"Nova"}'
    value = format.entry(b"42", 3, 3600, 7, body)
    entry = format.parse_entry(value)
    assert entry is not None
    assert (entry.version, entry.load_ms, entry.body) == (3, 7, body)
    assert value.startswith(format.entry_head(b"42"))
    assert not value.startswith(format.entry_head(b"4"))
    assert format.version_of(value) == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[:-1],  # truncated
        lambda v: v[:-1] + b" }",  # padded
        lambda v: v.replace(b'"size":', b'"length":'),  # unknown header
        lambda v: v.replace(b'"version":3', b'"version":"3"'),
        lambda v: b"not json",
    ],
)
def test_a_damaged_entry_is_not_served(damage) -> None:
    value = format.entry(b"1", 3, 60, 1, b'{"a":1}')
    assert format.parse_entry(damage(value)) is None


def test_markers_name_their_version_and_a_delete_outranks_every_version() -> None:
    assert format.marker(4) == b'{"state":"written","version":4}'
    deleted = format.marker(format.DELETED_VERSION)
    assert deleted == b'{"state":"deleted","version":9007199254740991}'
    assert format.version_of(deleted) == format.DELETED_VERSION == 2**53 - 1
    assert format.parse_entry(deleted) is None
    assert format.version_of(b"garbage") == 0


def test_the_version_of_an_entry_is_found_with_the_largest_epoch() -> None:
    epoch = str(2**format.COUNTER_START_BITS).encode()
    value = format.entry(epoch, 10**11, 60, 1, b"{}")
    assert format.version_of(value) == 10**11


def test_fresh_counters_stay_below_their_bound() -> None:
    assert all(0 < format.fresh_counter() <= 2**format.COUNTER_START_BITS for _ in range(100))


def test_the_scripts_are_built_from_the_format_constants_only() -> None:
    for name in ("READ_ENTRY", "FILL_ENTRY", "READ_PAGE", "FILL_PAGE", "INVALIDATE", "DEMOTE"):
        source = getattr(scripts, name)
        assert "$" not in source, name  # every placeholder substituted
        assert '"state"' not in source.replace(format.LUA["entry_epoch_head"], "").replace(
            format.LUA["written_head"], ""
        ).replace(format.LUA["entry_state_head"], ""), name
    value = format.entry(b"5", 1, 60, 1, b"{}")
    assert value.startswith(format.LUA["entry_epoch_head"].encode() + b"5,")
    assert value.startswith(format.LUA["entry_state_head"].encode())
    assert format.marker(7).startswith(format.LUA["written_head"].encode())
    lua_pattern = format.LUA["version_pattern"].replace("%d", r"\d")
    assert re.search(lua_pattern.encode(), value)


def test_the_readme_entry_example_is_what_the_format_stores() -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"^\{\"state\":\"entry\".*\}$", readme, re.MULTILINE)
    assert example is not None, "README: no stored entry example"
    assert format.parse_entry(example[0].encode()) is not None
    built = format.entry(b"8", 3, 3600, 2, b"{}")
    key_order = re.compile(rb'"(\w+)":')
    assert key_order.findall(example[0].encode())[:9] == key_order.findall(built)[:9]


# -- key families --------------------------------------------------------------------------
def keys(entity: str, salt: bytes = b"salt") -> format.EntityKeys:
    return format.EntityKeys(ENTITIES[entity], "tales:", KeyEncoder(salt))


def test_entity_key_families() -> None:
    hero = keys("hero")
    entry = hero.entry(HERO_ID)
    tag = f"{{hero.{HERO_ID.int % format.ENTRY_TAGS}}}"
    assert entry == f"tales:hero:{tag}:{HERO_ID}"
    assert hero.lease(entry) == f"tales:lease:hero:{tag}:{HERO_ID}"
    assert hero.epoch_of(entry) == f"tales:epoch:{tag}"
    assert (hero.pages_epoch, hero.family) == ("tales:epoch:{hero.pages}", "tales:gen:{hero.pages}")
    assert hero.generation("hero:lang:en") == "tales:gen:{hero.pages}:lang:en"
    assert len(set(hero.epochs)) == format.ENTRY_TAGS + 1
    assert hero.epoch_of(entry) in hero.epochs and hero.pages_epoch in hero.epochs


def test_a_page_depends_on_its_most_selective_scope_and_names_the_other_filters() -> None:
    hero = keys("hero")
    assert hero.page({}, 20, 0).base == "tales:hero:{hero.pages}:all:l20:o0"
    assert hero.page({}, 20, 0).scope == "hero:all"
    both = hero.page({"language": "en", "name": "Max"}, 5, 10)
    assert both == format.PageQuery(
        "tales:hero:{hero.pages}:name:Max:language=en:l5:o10", "hero:name:Max"
    )
    assert hero.page({"language": "en"}, 20, 0).scope == "hero:lang:en"


def test_user_values_cannot_form_patterns_or_run_into_the_next_segment() -> None:
    page = keys("hero").page({"name": "a*b:c%"}, 20, 0)
    assert page.base == "tales:hero:{hero.pages}:name:a%2Ab%3Ac%25:l20:o0"
    braces = keys("hero").page({"name": "{x}"}, 20, 0)  # no user value makes a hash tag
    assert braces.base == "tales:hero:{hero.pages}:name:%7Bx%7D:l20:o0"


def test_personal_values_are_keyed_hashes_in_every_key() -> None:
    child = keys("child")
    exact = child.page({"name": "Zoë", "age": 5, "gender": "female"}, 20, 0)
    by_name = child.page({"name": "Zoë"}, 20, 0)
    for key in (exact.base, exact.scope, by_name.base, by_name.scope):
        assert "Zo" not in key and "%C3" not in key
    assert exact.base.startswith("tales:child:{child.pages}:exact:#")
    assert exact.base.endswith(":5:female:l20:o0")
    assert by_name.scope == exact.scope  # the exact page moves with the name's scope
    assert keys("child", b"other").page({"name": "Zoë"}, 20, 0).base != by_name.base
    story = keys("story").page({"child_name": "Zoë"}, 20, 0)
    assert "Zo" not in story.base


def test_scopes_touched_by_a_row() -> None:
    story = keys("story")
    child_id = uuid.uuid4()
    touched = story.scopes_touched({"child_id": child_id, "child_name": None, "language": "en"})
    assert touched == {f"story:child:{child_id}", "story:lang:en"}
    assert story.scopes_touched(None) == set()
