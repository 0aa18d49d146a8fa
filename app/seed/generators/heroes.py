"""Heroes' rows, and the heroes a story invents for itself: a titled name, a creature with
one appearance detail, personality traits agreeing with the hero's gender, strengths."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from app.heroes.entity import HEROES
from app.seed.generators.population import EN, HERO_GENDER_WEIGHTS, LANGUAGE_WEIGHTS
from app.seed.generators.rows import new_row
from app.seed.generators.streams import chance, entity_ids, pick_weighted, stream, timestamp
from app.seed.vocabulary import inflect, vocabulary

STREAM = "heroes"  # the purpose of its random stream
ENTITY = HEROES.name  # its ids are the stream of this name (the loader checks them)

#: A hero's age in years: usually an ordinary one, sometimes a creature's long life.
HERO_AGES = (5, 40)
CREATURE_AGES = (3, 250)
CREATURE_AGE_PROBABILITY = 0.2

#: How many words a hero gets: (fewest, most).
TRAIT_COUNT = (2, 4)
INTEREST_COUNT = (1, 4)
STRENGTH_COUNT = (1, 3)

#: An invented hero: this many traits, one strength.
INVENTED_TRAITS = 2
INVENTED_STRENGTHS = 1


def hero_name(rng: random.Random, language: str) -> tuple[str, str]:
    """(titled name, gender): a title that implies a gender decides it."""
    words = vocabulary().heroes
    title = rng.choice(words.titles[language])
    gender = title.gender or pick_weighted(rng, HERO_GENDER_WEIGHTS)
    return f"{title.title} {rng.choice(words.names[language])}", gender


def traits(rng: random.Random, language: str, gender: str, k: int) -> list[str]:
    """`k` distinct personality traits, in the form agreeing with `gender`."""
    chosen = rng.sample(vocabulary().heroes.personality_traits[language], k)
    return [inflect(word, gender) for word in chosen]


def _appearance(language: str, creature: str, detail: str) -> str:
    if language == EN:
        return f"A {creature} with {detail}."
    return f"{creature[0].upper()}{creature[1:]} с {detail}."


def hero_rows(count: int, seed: int, now: datetime) -> Iterator[dict[str, Any]]:
    """`count` heroes for `seed`, created in the days before `now`."""
    words = vocabulary()
    rng = stream(seed, STREAM)
    ids = entity_ids(seed, ENTITY)
    for _ in range(count):
        language = pick_weighted(rng, LANGUAGE_WEIGHTS)
        name, gender = hero_name(rng, language)
        creature = rng.choice(words.heroes.creatures[language])
        detail = rng.choice(words.heroes.appearance_details[language])
        created = timestamp(rng, now)
        yield {
            **new_row(next(ids), created),
            "name": name,
            "age": rng.randint(*CREATURE_AGES)
            if chance(rng, CREATURE_AGE_PROBABILITY)
            else rng.randint(*HERO_AGES),
            "gender": gender,
            "appearance": _appearance(language, creature, detail),
            "personality_traits": traits(rng, language, gender, rng.randint(*TRAIT_COUNT)),
            "interests": rng.sample(words.interests[language], rng.randint(*INTEREST_COUNT)),
            "strengths": rng.sample(words.heroes.strengths[language], rng.randint(*STRENGTH_COUNT)),
            "language": language,
        }


def invented_hero(rng: random.Random, language: str) -> dict[str, Any]:
    """A hero made up for one story only: the fields its text needs, no row behind it."""
    words = vocabulary().heroes
    name, gender = hero_name(rng, language)
    creature = rng.choice(words.creatures[language])
    return {
        "name": name,
        "gender": gender,
        "appearance": f"a {creature}" if language == EN else creature,
        "personality_traits": traits(rng, language, gender, INVENTED_TRAITS),
        "strengths": rng.sample(words.strengths[language], INVENTED_STRENGTHS),
    }
