"""A story's title and text: a few paragraphs filled in from the vocabulary's templates,
with the words (pronouns, Russian verb forms) agreeing with the child's and hero's gender."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from app.seed.generators.heroes import traits
from app.seed.generators.population import EN
from app.seed.vocabulary import Vocabulary, inflect, vocabulary

#: The stories.title column (and the API's Title) holds at most this many characters.
TITLE_MAX_LENGTH = 300
#: Middle paragraphs of a story: (fewest, most), kept in the vocabulary's order.
MIDDLE_COUNT = (1, 3)
#: A hero without traits or strengths (a pooled row may have none) gets this many.
FALLBACK_TRAITS = 2
FALLBACK_STRENGTHS = 1
PARAGRAPH_SEPARATOR = "\n\n"


def _capitalized(text: str) -> str:
    return text[0].upper() + text[1:]


def _english_words(
    words: Vocabulary, obj_text: str, hero: Mapping[str, Any], strength: str, child_gender: str
) -> dict[str, str]:
    pronouns = words.grammar.en_pronouns[child_gender]
    return {
        "obj_text": obj_text,
        "obj_cap": _capitalized(obj_text),
        "h_description": hero["appearance"].rstrip(".").lower(),
        "h_strength_en": strength,
        "C_they": pronouns.they.capitalize(),
        "c_them": pronouns.them,
        "c_their": pronouns.their,
        "c_were": pronouns.were,
    }


def _russian_words(
    words: Vocabulary, obj_text: str, hero: Mapping[str, Any], strength: str, child_gender: str
) -> dict[str, str]:
    values = {
        "obj_acc": obj_text,
        "h_description": hero["appearance"].rstrip(".").lower(),
        "h_strength_ru": strength,
    }
    for key, pair in words.grammar.ru_verbs.items():
        values[f"c_{key}"] = inflect(pair, child_gender)
        values[f"h_{key}"] = inflect(pair, hero["gender"])
    return values


def story_text(
    rng: random.Random,
    language: str,
    hero: Mapping[str, Any],
    child_name: str,
    child_gender: str,
    interests: Sequence[str],
) -> tuple[str, str]:
    """(title, content) of a story about `hero` told to the child."""
    words = vocabulary()
    story = words.stories
    obj = rng.choice(story.objects[language])
    hero_gender = hero["gender"]
    hero_traits = hero["personality_traits"] or traits(rng, language, hero_gender, FALLBACK_TRAITS)
    strengths = hero["strengths"] or rng.sample(
        words.heroes.strengths[language], FALLBACK_STRENGTHS
    )
    interest = rng.choice(list(interests) or words.interests[language])
    values: dict[str, str] = {
        "hero": hero["name"],
        "child": child_name,
        "interest": interest,
        "obj_title": obj.title,
        "trait": hero_traits[0],
        "trait2": hero_traits[-1] if len(hero_traits) > 1 else hero_traits[0],
    }
    localized = _english_words if language == EN else _russian_words
    values.update(localized(words, obj.text, hero, strengths[0], child_gender))
    title = rng.choice(story.title_templates[language]).format_map(values)
    paragraphs = [rng.choice(story.openings[language]), rng.choice(story.meetings[language])]
    middles = story.middles[language]
    chosen = sorted(rng.sample(range(len(middles)), rng.randint(*MIDDLE_COUNT)))
    paragraphs += [middles[index] for index in chosen]
    paragraphs.append(rng.choice(story.endings[language]))
    content = PARAGRAPH_SEPARATOR.join(p.format_map(values) for p in paragraphs)
    return title[:TITLE_MAX_LENGTH], content
