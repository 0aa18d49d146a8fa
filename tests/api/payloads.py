"""Request bodies for the tests that use the REST API (api, cache, resilience): one builder
per entity, overridable per test.

Every test builds its bodies here so that a change to an entity's required fields is made in
one place; `overrides` replace (or, with `None`, explicitly null) single fields.
"""

from typing import Any

API = "/api/v1"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def hero(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Luna",
        "age": 9,
        "gender": "female",
        "appearance": "silver hair and a blue cloak",
        "personality_traits": ["brave", "curious"],
        "interests": ["stars"],
        "strengths": ["climbing"],
        "language": "en",
        **overrides,
    }


def minimal_hero(**overrides: Any) -> dict[str, Any]:
    """Only the required hero fields: the optional ones take their defaults."""
    return {"name": "Bolt", "age": 12, "gender": "male", "language": "en", **overrides}


def child(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Mila",
        "age": 5,
        "age_category": "3-5",
        "gender": "female",
        "interests": ["dragons", "trains"],
        **overrides,
    }


def story(**overrides: Any) -> dict[str, Any]:
    """A story without a child: its child_* fields are given by the client."""
    return {
        "title": "The Moon Lantern",
        "content": "Once upon a time a lantern wanted to visit the moon.",
        "moral": "Curiosity lights the way.",
        "language": "en",
        "child_name": "Ivan",
        "age_category": "6-8",
        "child_gender": "male",
        "child_interests": ["space"],
        "story_length": 5,
        **overrides,
    }


def story_of_child(child_id: str, **overrides: Any) -> dict[str, Any]:
    """A story about a stored child: the child_* fields come from the child, not the body."""
    body = story(child_id=child_id)
    for name in ("child_name", "age_category", "child_gender", "child_interests"):
        del body[name]
    body.update(overrides)
    return body


def rating(value: Any) -> dict[str, Any]:
    return {"rating": value}


def of(entity: str, **overrides: Any) -> dict[str, Any]:
    """A valid create (and PUT) body for `entity`."""
    return {"hero": hero, "child": child, "story": story}[entity](**overrides)


def small_change(entity: str, label: str = "changed") -> dict[str, Any]:
    """A valid PATCH body for `entity` that changes one text field."""
    field = {"hero": "name", "child": "name", "story": "title"}[entity]
    return {field: f"{entity} {label}"}
