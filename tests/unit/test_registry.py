"""The entity declarations and what is derived from them."""

import pytest
from pydantic import ValidationError

from app.core.registry import Cascade, EntitySpec, Filter, Registry
from app.core.settings import SettingsError, load_settings
from app.entities import ENTITIES
from app.heroes.entity import HEROES


def test_the_list_query_takes_every_filter_and_paging_strictly() -> None:
    query = HEROES.list_query
    assert list(query.model_fields) == ["name", "language", "limit", "offset"]
    assert query(language="en").limit == 20
    with pytest.raises(ValidationError):
        query(name="x" * 101)
    with pytest.raises(ValidationError):
        query(limit=101)
    with pytest.raises(ValidationError):
        query(colour="red")


def test_the_patch_schema_makes_every_field_optional() -> None:
    assert HEROES.patch().model_dump(exclude_unset=True) == {}


def test_each_entity_has_a_ttl_setting_defaulting_to_its_declared_ttl() -> None:
    settings = load_settings(ENTITIES, _env_file=None)
    assert [settings.ttl(spec) for spec in ENTITIES] == [3600, 1800, 600]
    tuned = load_settings(ENTITIES, _env_file=None, cache_child_ttl=5)
    assert tuned.ttl(ENTITIES["child"]) == 5
    with pytest.raises(SettingsError, match="CACHE_STORY_TTL"):
        load_settings(ENTITIES, _env_file=None, cache_story_ttl=0)


def test_a_declaration_mistake_fails_at_start_naming_it() -> None:
    async def nothing(_session: object, _row: object) -> list[object]:
        return []

    bad_filter = EntitySpec(
        name="hero2",
        plural="heroes2",
        model=HEROES.model,
        create=HEROES.create,
        read=HEROES.read,
        filters=(Filter("colour", str),),
    )
    with pytest.raises(ValueError, match="colour"):
        Registry([bad_filter])
    bad_cascade = EntitySpec(
        name="hero2",
        plural="heroes2",
        model=HEROES.model,
        create=HEROES.create,
        read=HEROES.read,
        cascades=(Cascade("villain", "delete", nothing),),
    )
    with pytest.raises(ValueError, match="villain"):
        Registry([bad_cascade])


def test_cascades_are_found_by_their_source() -> None:
    assert len(ENTITIES.cascades_from("child", "update")) == 1
    assert len(ENTITIES.cascades_from("child", "delete")) == 1
    assert len(ENTITIES.cascades_from("hero", "delete")) == 1
    assert ENTITIES.cascades_from("story", "delete") == []
