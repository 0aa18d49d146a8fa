"""Whatever a write accepts reads back: every optional field of every write schema (create,
PATCH, actions; nested objects' optional members too) is written, then read, on both
databases with the cache on and off.

The 500 this guards against: a PATCH of `audio_file` without its optional `metadata` was
stored without it, and the read schema could not be built from the row."""

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from app.core.registry import EntitySpec
from app.core.schemas import sent_fields
from app.entities import ENTITIES
from tests.api import payloads
from tests.api.helpers import create, fetch, url

AUDIO = {"url": "https://cdn.example/moon.mp3", "provider": "tts"}
#: A value other than the default for each optional field of each entity's write schemas;
#: `None` is also written for the nullable ones. "audio_file" is walked without, then with,
#: its optional member (`metadata`).
SAMPLES: dict[str, dict[str, list[Any]]] = {
    "hero": {
        "appearance": ["a green scarf"],
        "personality_traits": [["kind", "bold"]],
        "interests": [["maps"]],
        "strengths": [["swimming", "riddles"]],
    },
    "child": {"age_category": ["6-8"], "interests": [["owls"]]},
    "story": {
        "moral": ["Share the light."],
        "child_id": ["<child>"],
        "hero_id": ["<hero>"],
        "child_name": ["Olga"],
        "age_category": ["3-5"],
        "child_gender": ["female"],
        "child_interests": [["boats", "rain"]],
        "story_length": [12],
        "rating": [7],
        "audio_file": [AUDIO, {**AUDIO, "metadata": {"voice": "calm", "seconds": 310}}],
        "model_used": ["storyteller-2"],
        "full_response": [{"choices": [{"text": "Once", "score": 0.5}], "ok": True}],
        "generation_info": [{"tokens": 812, "nested": {"list": [1, None, "x"]}}],
    },
}
NESTED = {("story", "audio_file"): ("metadata",)}


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def optional_fields(spec: EntitySpec) -> set[tuple[str, ...]]:
    """Every optional field of the entity's write schemas, nested members as paths."""
    found: set[tuple[str, ...]] = set()
    for schema in (spec.create, spec.patch, *(action.body for action in spec.actions)):
        for name, info in schema.model_fields.items():
            if not info.is_required():
                found.add((name,))
            nested = _nested_model(info.annotation)
            if nested is not None:
                found.update(
                    (name, member)
                    for member, member_info in nested.model_fields.items()
                    if not member_info.is_required()
                )
    return found


def test_every_optional_field_of_every_write_schema_has_a_sample() -> None:
    for spec in ENTITIES:
        walked = {(name,) for name in SAMPLES[spec.name]}
        walked |= {
            (field, *members) for (entity, field), members in NESTED.items() if entity == spec.name
        }
        # the required ones are optional in PATCH: they are walked by every create and patch
        required = {
            (name,) for name, info in spec.create.model_fields.items() if info.is_required()
        }
        assert optional_fields(spec) - required == walked, spec.name


async def _value(client: httpx.AsyncClient, sample: Any) -> Any:
    if sample == "<child>":
        return (await create(client, "child", payloads.child(name="Referenced")))["id"]
    if sample == "<hero>":
        return (await create(client, "hero", payloads.hero(name="Referenced")))["id"]
    return sample


def _base(entity: str, field: str) -> dict[str, Any]:
    """A create body: a story given a child_id sends no snapshot of the child."""
    body = payloads.of(entity)
    if entity == "story" and field == "child_id":
        for name in ("child_name", "age_category", "child_gender", "child_interests"):
            del body[name]
    return body


def _expected(spec: EntitySpec, field: str, value: Any) -> Any:
    """What the service must read back: the value as the write schema takes it (defaults of
    nested members filled), in JSON."""
    written = sent_fields(spec.patch.model_validate({field: value}))
    return spec.patch.model_validate(written).model_dump(mode="json", include={field})[field]


def _cases() -> list[tuple[str, str, int]]:
    return [
        (entity, field, index)
        for entity, fields in SAMPLES.items()
        for field, samples in fields.items()
        for index in range(len(samples))
    ]


@pytest.mark.parametrize(("entity", "field", "index"), _cases())
async def test_an_optional_field_written_reads_back(
    client: httpx.AsyncClient, entity: str, field: str, index: int
):
    spec = ENTITIES[entity]
    value = await _value(client, SAMPLES[entity][field][index])
    expected = _expected(spec, field, value)

    # create with it
    created = await create(client, entity, {**_base(entity, field), field: value})
    assert created[field] == expected
    assert (await fetch(client, entity, created["id"]))[field] == expected

    # PATCH it onto an entity created without it
    other = await create(client, entity, _base(entity, field))
    patched = await client.patch(url(entity, other["id"]), json={field: value})
    assert patched.status_code == 200, patched.text
    assert patched.json()[field] == expected
    assert (await fetch(client, entity, other["id"]))[field] == expected

    # PUT it, and null it again where it is nullable
    replaced = await client.put(
        url(entity, other["id"]), json={**_base(entity, field), field: value}
    )
    assert replaced.status_code == 200, replaced.text
    assert (await fetch(client, entity, other["id"]))[field] == expected
    if spec.create.model_fields[field].default is None:
        nulled = await client.patch(url(entity, other["id"]), json={field: None})
        assert nulled.status_code == 200, nulled.text
        assert (await fetch(client, entity, other["id"]))[field] is None


async def test_the_rating_action_reads_back(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())
    rated = await client.put(f"{url('story', story['id'])}/rating", json={"rating": 3})
    assert rated.status_code == 200, rated.text
    assert (await fetch(client, "story", story["id"]))["rating"] == 3
