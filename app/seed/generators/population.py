"""Who the sample data is about: the mix of languages and genders, children's ages and
their age categories, and the language a name is written in."""

from __future__ import annotations

from typing import NamedTuple

from app.core.schemas import Gender, Language

EN, RU = Language.en.value, Language.ru.value
MALE, FEMALE, OTHER = Gender.male.value, Gender.female.value, Gender.other.value

#: Relative weights of the picks (the order of the keys is part of the determinism).
LANGUAGE_WEIGHTS = {EN: 55, RU: 45}
HERO_GENDER_WEIGHTS = {MALE: 45, FEMALE: 45, OTHER: 10}
CHILD_GENDER_WEIGHTS = {MALE: 47, FEMALE: 47, OTHER: 6}

#: A child's age in years: (youngest, oldest).
CHILD_AGES = (3, 12)

#: The first and last letter of the Cyrillic block: a name with one of them is Russian.
CYRILLIC = ("\u0400", "\u04ff")


class AgeBand(NamedTuple):
    youngest: int
    oldest: int
    category: str


AGE_BANDS = (AgeBand(3, 5, "3-5"), AgeBand(6, 8, "6-8"), AgeBand(9, 12, "9-12"))


def age_category(age: int) -> str | None:
    """The age category a parent would pick for `age`, None outside every band."""
    for band in AGE_BANDS:
        if band.youngest <= age <= band.oldest:
            return band.category
    return None


def language_of_name(name: str) -> str:
    first, last = CYRILLIC
    return RU if any(first <= ch <= last for ch in name) else EN
