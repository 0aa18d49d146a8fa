"""Stories' rows: most are told to one of the given children (and carry the child's
snapshot, by the API's own rule), some feature one of the given heroes of the same language;
the others have a typed-in snapshot or a hero invented for the story."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from app.seed.generators.heroes import invented_hero
from app.seed.generators.population import (
    CHILD_AGES,
    CHILD_GENDER_WEIGHTS,
    LANGUAGE_WEIGHTS,
    age_category,
    language_of_name,
)
from app.seed.generators.rows import new_row
from app.seed.generators.story_metadata import (
    audio_file,
    full_response,
    generation_info,
    model_used,
    moral,
    rating,
    story_minutes,
)
from app.seed.generators.story_text import story_text
from app.seed.generators.streams import chance, entity_ids, pick_weighted, stream, timestamp
from app.seed.vocabulary import vocabulary
from app.stories.entity import STORIES
from app.stories.rules import child_snapshot

STREAM = "stories"  # the purpose of its random stream
ENTITY = STORIES.name  # its ids are the stream of this name (the loader checks them)

#: The fields `story_rows` reads from the hero and child rows it is given (the columns the
#: loader reads when the stories use rows already in the database).
HERO_FIELDS = (
    "id",
    "name",
    "gender",
    "appearance",
    "personality_traits",
    "strengths",
    "language",
    "created_at",
)
CHILD_FIELDS = ("id", "name", "age_category", "gender", "interests", "created_at")

CHILD_PROBABILITY = 0.9  # the story belongs to one of the children
HERO_PROBABILITY = 0.4  # it features one of the heroes of its language
TYPED_IN_INTEREST_COUNT = (1, 3)


def _typed_in_snapshot(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """(language, gender, snapshot) of a story without a child record behind it."""
    words = vocabulary()
    language = pick_weighted(rng, LANGUAGE_WEIGHTS)
    gender = pick_weighted(rng, CHILD_GENDER_WEIGHTS)
    age = rng.randint(*CHILD_AGES)
    snapshot = child_snapshot(
        rng.choice(words.children.names[language][gender]),
        age_category(age),
        gender,
        rng.sample(words.interests[language], rng.randint(*TYPED_IN_INTEREST_COUNT)),
    )
    return language, gender, snapshot


def story_rows(
    count: int,
    seed: int,
    now: datetime,
    children: Sequence[dict[str, Any]],
    heroes: Sequence[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Most stories belong to one of `children`, some feature one of `heroes`."""
    rng = stream(seed, STREAM)
    ids = entity_ids(seed, ENTITY)
    heroes_by_language = {
        language: [hero for hero in heroes if hero["language"] == language]
        for language in LANGUAGE_WEIGHTS
    }
    for _ in range(count):
        story_id = next(ids)
        child = rng.choice(children) if children and chance(rng, CHILD_PROBABILITY) else None
        if child is not None:
            snapshot = child_snapshot(
                child["name"], child["age_category"], child["gender"], child["interests"]
            )
            language = language_of_name(child["name"])
            gender = child["gender"]
        else:
            language, gender, snapshot = _typed_in_snapshot(rng)
        candidates = heroes_by_language[language]
        hero = rng.choice(candidates) if candidates and chance(rng, HERO_PROBABILITY) else None
        title, content = story_text(
            rng,
            language,
            invented_hero(rng, language) if hero is None else hero,
            snapshot["child_name"],
            gender,
            snapshot["child_interests"],
        )
        not_before = max(
            (row["created_at"] for row in (child, hero) if row is not None), default=None
        )
        created = timestamp(rng, now, not_before)
        minutes = story_minutes(rng)
        model = model_used(rng)
        info = generation_info(rng, model, content, language)
        response = full_response(rng, story_id, model, info)
        yield {
            **new_row(story_id, created),
            "title": title,
            "content": content,
            "moral": moral(rng, language),
            "language": language,
            "child_id": child["id"] if child is not None else None,
            "hero_id": hero["id"] if hero is not None else None,
            **snapshot,
            "story_length": minutes,
            "rating": rating(rng),
            "audio_file": audio_file(rng, story_id, language, minutes),
            "model_used": model,
            "full_response": response,
            "generation_info": info,
        }
