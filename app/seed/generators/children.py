"""Children's rows: a name, age and age category, gender and interests. Names are personal
data: they are only ever written to the database, never logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from app.children.entity import CHILDREN
from app.seed.generators.population import (
    CHILD_AGES,
    CHILD_GENDER_WEIGHTS,
    LANGUAGE_WEIGHTS,
    age_category,
)
from app.seed.generators.rows import new_row
from app.seed.generators.streams import chance, entity_ids, pick_weighted, stream, timestamp
from app.seed.vocabulary import vocabulary

STREAM = "children"  # the purpose of its random stream
ENTITY = CHILDREN.name  # its ids are the stream of this name (the loader checks them)

#: A few parents never filled the age category in.
AGE_CATEGORY_PROBABILITY = 0.95
INTEREST_COUNT = (1, 4)


def child_rows(count: int, seed: int, now: datetime) -> Iterator[dict[str, Any]]:
    """`count` children for `seed`, created in the days before `now`."""
    words = vocabulary()
    rng = stream(seed, STREAM)
    ids = entity_ids(seed, ENTITY)
    for _ in range(count):
        language = pick_weighted(rng, LANGUAGE_WEIGHTS)
        gender = pick_weighted(rng, CHILD_GENDER_WEIGHTS)
        age = rng.randint(*CHILD_AGES)
        created = timestamp(rng, now)
        yield {
            **new_row(next(ids), created),
            "name": rng.choice(words.children.names[language][gender]),
            "age": age,
            "age_category": age_category(age) if chance(rng, AGE_CATEGORY_PROBABILITY) else None,
            "gender": gender,
            "interests": rng.sample(words.interests[language], rng.randint(*INTEREST_COUNT)),
        }
