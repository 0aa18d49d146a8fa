"""The seed's vocabulary: `vocabulary.json` of this package, read and validated once.

The words the sample rows are built from are data, not code. `vocabulary()` parses the file
into frozen, typed models on first use; a file that is missing, not JSON or of the wrong
shape raises `VocabularyError`, naming the file and every problem with its location.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from app.core.schemas import Gender, Language

#: The file, inside this package (it ships with the source tree, as the app runs from it).
VOCABULARY_FILE = "vocabulary.json"
_PACKAGE = __name__.rpartition(".")[0]

#: The most distinct words any generator draws from one list at once: lists that are
#: sampled (not just picked from) hold at least this many.
MIN_SAMPLED = 4

#: The languages and genders every keyed section covers: those the API accepts.
LANGUAGES = frozenset(language.value for language in Language)
GENDERS = frozenset(gender.value for gender in Gender)

FEMININE = Gender.female.value

T = TypeVar("T")


class VocabularyError(RuntimeError):
    """The vocabulary file is missing or malformed."""


def _keyed_by(expected: frozenset[str], what: str) -> Callable[[dict[str, T]], dict[str, T]]:
    def check(value: dict[str, T]) -> dict[str, T]:
        if value.keys() != expected:
            raise ValueError(
                f"must have exactly the {what} {', '.join(sorted(expected))}"
                f" (got {', '.join(sorted(value)) or 'none'})"
            )
        return value

    return check


def _template(value: str) -> str:
    """A `str.format` template: fails here rather than half-way through a seed."""
    try:
        list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"not a valid format template: {exc}") from None
    return value


def _known_gender(value: str) -> str:
    if value not in GENDERS:
        raise ValueError(f"must be one of the genders {', '.join(sorted(GENDERS))}")
    return value


Text = Annotated[str, Field(min_length=1)]
Template = Annotated[Text, AfterValidator(_template)]
Choices = Annotated[tuple[T, ...], Field(min_length=1)]  # one item is picked at a time
Sampled = Annotated[tuple[T, ...], Field(min_length=MIN_SAMPLED)]  # several distinct ones
ByLanguage = Annotated[dict[str, T], AfterValidator(_keyed_by(LANGUAGES, "languages"))]
ByGender = Annotated[dict[str, T], AfterValidator(_keyed_by(GENDERS, "genders"))]
GenderName = Annotated[str, AfterValidator(_known_gender)]

#: A Russian word that agrees with a gender: (masculine, feminine).
GenderedPair = tuple[Text, Text]
#: A word as the vocabulary holds it: plain, or a gendered pair (see `inflect`).
Word = Text | GenderedPair


def inflect(word: Word, gender: str) -> str:
    """The form of `word` for `gender`: feminine for "female", masculine otherwise."""
    if isinstance(word, str):
        return word
    masculine, feminine = word
    return feminine if gender == FEMININE else masculine


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class HeroTitle(_Section):
    title: Text
    gender: GenderName | None = None  # the gender the title implies, if any


class HeroWords(_Section):
    titles: ByLanguage[Choices[HeroTitle]]
    names: ByLanguage[Choices[Text]]
    creatures: ByLanguage[Choices[Text]]
    appearance_details: ByLanguage[Choices[Text]]
    personality_traits: ByLanguage[Sampled[Word]]
    strengths: ByLanguage[Sampled[Text]]


class ChildWords(_Section):
    names: ByLanguage[ByGender[Choices[Text]]]


class StoryObject(_Section):
    title: Text  # as in a title; Russian: nominative
    text: Text  # in running text; Russian: accusative


class StoryWords(_Section):
    objects: ByLanguage[Choices[StoryObject]]
    title_templates: ByLanguage[Choices[Template]]
    openings: ByLanguage[Choices[Template]]
    meetings: ByLanguage[Choices[Template]]
    middles: ByLanguage[Sampled[Template]]
    endings: ByLanguage[Choices[Template]]
    morals: ByLanguage[Choices[Text]]


class Pronouns(_Section):
    they: Text
    them: Text
    their: Text
    were: Text


class Grammar(_Section):
    en_pronouns: ByGender[Pronouns]
    ru_verbs: Annotated[dict[Text, GenderedPair], Field(min_length=1)]


class TtsProvider(_Section):
    provider: Text
    voices: Choices[Text]


class GenerationWords(_Section):
    llm_weights: Annotated[dict[Text, PositiveInt], Field(min_length=1)]
    tts_providers: ByLanguage[Choices[TtsProvider]]
    prompt_versions: Choices[Text]


class Vocabulary(_Section):
    about: str
    interests: ByLanguage[Sampled[Text]]
    heroes: HeroWords
    children: ChildWords
    stories: StoryWords
    grammar: Grammar
    generation: GenerationWords


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _problems(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)


def parse_vocabulary(text: str | bytes, source: str = VOCABULARY_FILE) -> Vocabulary:
    """Validate the JSON `text`; `source` names it in the error."""
    try:
        return Vocabulary.model_validate_json(text)
    except ValidationError as exc:
        raise VocabularyError(
            f"malformed seed vocabulary {source} ({_plural(exc.error_count(), 'problem')}):\n"
            + _problems(exc)
        ) from None


@cache
def vocabulary() -> Vocabulary:
    """The package's vocabulary, read and validated on first use."""
    resource = resources.files(_PACKAGE).joinpath(VOCABULARY_FILE)
    try:
        text = resource.read_bytes()
    except OSError as exc:
        raise VocabularyError(f"cannot read the seed vocabulary {resource}: {exc}") from None
    return parse_vocabulary(text, str(resource))
