"""`python -m app seed`: fill the configured database with plausible sample data.

Heroes, children and bedtime stories in English and Russian, generated from a seeded random
generator: the same `--seed` (and the same reference day) gives the same rows, ids included.
Rows are inserted with core `insert()` executemany in batches, one transaction per batch,
through the application's own engine. A story that references a child carries the child's
snapshot (name, age category, gender, interests) exactly as the API copies it on create.

Children's names are personal data: nothing here logs or prints them, only counts and ids.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, insert, inspect, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tqdm import tqdm

from app.children.models import Child
from app.core.database import Base, create_engine
from app.core.settings import SettingsError, load_settings
from app.heroes.models import Hero
from app.stories.models import Story

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
PROGRESS_THRESHOLD = 500
SPREAD = timedelta(days=90)
EXISTING_POOL_LIMIT = 10_000

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REFUSED = 2


@dataclass(frozen=True, slots=True)
class Counts:
    heroes: int
    children: int
    stories: int

    @property
    def total(self) -> int:
        return self.heroes + self.children + self.stories


SIZES: dict[str, Counts] = {
    "small": Counts(heroes=20, children=10, stories=50),
    "medium": Counts(heroes=200, children=100, stories=1000),
    "large": Counts(heroes=2000, children=1000, stories=20000),
}


@dataclass(frozen=True, slots=True)
class SeedReport:
    counts: Counts
    seed: int
    seconds: float
    stories_with_child: int
    stories_with_hero: int


class SeedRefused(RuntimeError):
    """The database is not in a state the seed can run against (exit code 2)."""


class SchemaMissing(SeedRefused):
    pass


# ---------------------------------------------------------------------------------------------
# Vocabulary. Russian words that must agree with a gender are (masculine, feminine) pairs;
# "other" uses the masculine form in Russian and "they" in English.
# ---------------------------------------------------------------------------------------------

LANGUAGES = ("en", "ru")
GENDERS = ("male", "female", "other")

HERO_TITLES: dict[str, list[tuple[str, str | None]]] = {
    # (title, gender it implies or None)
    "en": [
        ("Captain", None),
        ("Professor", None),
        ("Doctor", None),
        ("Little", None),
        ("Brave", None),
        ("Clever", None),
        ("Sleepy", None),
        ("Princess", "female"),
        ("Queen", "female"),
        ("Lady", "female"),
        ("Sir", "male"),
        ("Prince", "male"),
        ("King", "male"),
    ],
    "ru": [
        ("Капитан", None),
        ("Профессор", None),
        ("Доктор", None),
        ("Принцесса", "female"),
        ("Королева", "female"),
        ("Фея", "female"),
        ("Волшебница", "female"),
        ("Рыцарь", "male"),
        ("Принц", "male"),
        ("Король", "male"),
        ("Волшебник", "male"),
        ("Дракончик", "male"),
        ("Котёнок", "male"),
    ],
}

HERO_NAMES = {
    "en": [
        "Whiskers",
        "Moonbeam",
        "Pip",
        "Bramble",
        "Sparkle",
        "Biscuit",
        "Thistle",
        "Nutmeg",
        "Pebble",
        "Comet",
        "Maple",
        "Button",
        "Puddle",
        "Twinkle",
        "Hazel",
        "Marmalade",
        "Acorn",
        "Snowflake",
        "Rusty",
        "Clover",
    ],
    "ru": [
        "Усик",
        "Лучик",
        "Пуговка",
        "Искорка",
        "Шишка",
        "Мармелад",
        "Звёздочка",
        "Ветерок",
        "Орешек",
        "Облачко",
        "Клубничка",
        "Снежок",
        "Бублик",
        "Капелька",
        "Уголёк",
        "Одуванчик",
        "Пряник",
        "Светлячок",
        "Колокольчик",
        "Тучка",
    ],
}

CREATURES = {
    "en": [
        "ginger cat",
        "tiny dragon",
        "grey owl",
        "friendly robot",
        "little fox",
        "shy hedgehog",
        "white rabbit",
        "young unicorn",
        "clumsy bear cub",
        "wise old turtle",
        "silver mouse",
        "flying squirrel",
    ],
    "ru": [
        "рыжий кот",
        "маленький дракон",
        "серая сова",
        "добрый робот",
        "лисёнок",
        "застенчивый ёжик",
        "белый кролик",
        "юный единорог",
        "неуклюжий медвежонок",
        "мудрая черепаха",
        "серебристый мышонок",
        "белка-летяга",
    ],
}

CREATURE_AGES = (3, 250)

APPEARANCE_DETAILS = {
    "en": [
        "a blue scarf that is always a little too long",
        "a shiny brass compass on a string",
        "round glasses that slide down its nose",
        "a patched red cape",
        "boots with stars painted on them",
        "a tiny lantern that glows when someone is sad",
        "a backpack full of maps",
        "a hat with a feather from a phoenix",
        "spots that shimmer in moonlight",
        "a bell that rings only for friends",
    ],
    "ru": [
        "синим шарфом, который всегда чуть-чуть длинноват",
        "блестящим медным компасом на верёвочке",
        "круглыми очками, которые сползают на нос",
        "красным плащом в заплатках",
        "сапожками, расписанными звёздами",
        "крошечным фонариком, который светится, когда кому-то грустно",
        "рюкзаком, полным карт",
        "шляпой с пером жар-птицы",
        "пятнышками, которые мерцают при луне",
        "колокольчиком, который звенит только для друзей",
    ],
}

PERSONALITY_TRAITS = {
    "en": [
        "brave",
        "kind",
        "curious",
        "funny",
        "patient",
        "clever",
        "a little shy",
        "cheerful",
        "gentle",
        "honest",
        "dreamy",
        "generous",
    ],
    "ru": [
        ("смелый", "смелая"),
        ("добрый", "добрая"),
        ("любопытный", "любопытная"),
        ("весёлый", "весёлая"),
        ("терпеливый", "терпеливая"),
        ("умный", "умная"),
        ("немного застенчивый", "немного застенчивая"),
        ("жизнерадостный", "жизнерадостная"),
        ("ласковый", "ласковая"),
        ("честный", "честная"),
        ("мечтательный", "мечтательная"),
        ("щедрый", "щедрая"),
    ],
}

STRENGTHS = {
    "en": [
        "can fly",
        "talks to animals",
        "never gives up",
        "knows every star by name",
        "can become invisible",
        "solves any riddle",
        "glows in the dark",
        "makes everyone laugh",
        "remembers every road",
        "can hear the wind's stories",
    ],
    "ru": [
        "умеет летать",
        "разговаривает с животными",
        "никогда не сдаётся",
        "знает все звёзды по именам",
        "умеет становиться невидимкой",
        "разгадывает любые загадки",
        "светится в темноте",
        "умеет всех рассмешить",
        "помнит каждую дорогу",
        "слышит сказки ветра",
    ],
}

INTERESTS = {
    "en": [
        "dinosaurs",
        "space",
        "drawing",
        "football",
        "music",
        "dragons",
        "the sea",
        "castles",
        "robots",
        "animals",
        "puzzles",
        "dancing",
        "trains",
        "stars",
        "forests",
        "cooking",
        "pirates",
        "fairies",
    ],
    "ru": [
        "динозавры",
        "космос",
        "рисование",
        "футбол",
        "музыка",
        "драконы",
        "море",
        "замки",
        "роботы",
        "животные",
        "головоломки",
        "танцы",
        "поезда",
        "звёзды",
        "лес",
        "готовка",
        "пираты",
        "феи",
    ],
}

CHILD_NAMES: dict[str, dict[str, list[str]]] = {
    "en": {
        "male": ["Oliver", "Leo", "Jack", "Noah", "Max", "Theo", "Harry", "Finn", "Oscar"],
        "female": ["Emma", "Mia", "Sophia", "Ava", "Lily", "Grace", "Isla", "Chloe", "Ruby"],
        "other": ["Alex", "Sam", "Charlie", "Robin", "Jamie"],
    },
    "ru": {
        "male": ["Миша", "Ваня", "Лёва", "Тимофей", "Артём", "Матвей", "Федя", "Егор", "Гоша"],
        "female": ["Маша", "Аня", "Соня", "Даша", "Алиса", "Варя", "Полина", "Вера", "Ксюша"],
        "other": ["Саша", "Женя", "Валя"],
    },
}

AGE_CATEGORIES = ((3, 5, "3-5"), (6, 8, "6-8"), (9, 12, "9-12"))

STORY_OBJECTS = {
    # en: (title form, in-text form); ru: (nominative, accusative)
    "en": [
        ("the Moon Lantern", "the moon lantern"),
        ("the Whispering Forest", "the whispering forest"),
        ("the Lost Star", "the lost star"),
        ("the Sleepy Dragon", "the sleepy dragon"),
        ("the Secret Garden Gate", "the secret garden gate"),
        ("the Cloud Ship", "the cloud ship"),
        ("the Silver Key", "the silver key"),
        ("the Midnight Train", "the midnight train"),
        ("the Singing Shell", "the singing shell"),
        ("the Paper Boat", "the paper boat"),
        ("the Rainbow Bridge", "the rainbow bridge"),
        ("the Giant's Pillow", "the giant's pillow"),
    ],
    "ru": [
        ("Лунный фонарь", "лунный фонарь"),
        ("Потерянная звезда", "потерянную звезду"),
        ("Серебряный ключ", "серебряный ключ"),
        ("Облачный корабль", "облачный корабль"),
        ("Поющая ракушка", "поющую ракушку"),
        ("Бумажный кораблик", "бумажный кораблик"),
        ("Радужный мост", "радужный мост"),
        ("Волшебная подушка", "волшебную подушку"),
        ("Полночный поезд", "полночный поезд"),
        ("Сонный дракон", "сонного дракона"),
        ("Тайная калитка", "тайную калитку"),
        ("Золотое пёрышко", "золотое пёрышко"),
    ],
}

TITLE_TEMPLATES = {
    "en": [
        "{hero} and {obj_title}",
        "{child} and {obj_title}",
        "How {child} Found {obj_title}",
        "{hero} Saves the Night",
        "The Secret of {obj_title}",
        "A Night Adventure with {hero}",
        "{hero}, {child} and {obj_title}",
    ],
    "ru": [
        "{hero} и {obj_title}",
        "{child} и {obj_title}",
        "Как {child} {c_found} {obj_acc}",
        "{hero} спасает ночь",
        "Сказка про {obj_acc}",
        "{hero} и ночное приключение",
        "{hero}, {child} и {obj_title}",
    ],
}

OPENINGS = {
    "en": [
        "Once upon a time, in a town where the streetlights hummed lullabies, there lived "
        "a child named {child}. {C_they} loved {interest} more than anything else in the world.",
        "The moon was round and bright the night {child} could not fall asleep. {C_they} "
        "{c_were} thinking about {interest} and counting the stars outside the window.",
        "Far away, beyond the hills and the quiet river, {child} was getting ready for "
        "bed. Everybody knew that {child} adored {interest}.",
    ],
    "ru": [
        "Жил-был на свете ребёнок по имени {child}. Больше всего {child} {c_loved} всё, что "
        "было связано с темой «{interest}».",
        "В ту ночь луна была круглой и яркой, а {child} никак не {c_could} уснуть: в голове "
        "кружились мысли о том, что называется «{interest}».",
        "Далеко-далеко, за холмами и тихой рекой, {child} {c_got_ready} ко сну. Все знали, "
        "что {child} обожает тему «{interest}».",
    ],
}

MEETINGS = {
    "en": [
        "Suddenly there was a soft tap at the window. It was {hero}, {h_description}. "
        '"I need your help," {hero} whispered. "{obj_cap} has disappeared!"',
        "A warm light filled the room, and out of it stepped {hero}. Everyone who knew "
        "{hero} said the hero was {trait} and {trait2}.",
        'Under the bed something rustled, and {hero} peeked out with a smile. "Tonight," '
        'said {hero}, "we are going to find {obj_text}."',
    ],
    "ru": [
        "Вдруг в окно тихонько постучали. Это {h_was} {hero} — {h_description}. «Мне нужна "
        "твоя помощь, — {h_whispered} {hero}. — Нам нужно найти {obj_acc}!»",
        "Комнату наполнил тёплый свет, и из него {h_stepped} {hero}. Все, кто знал героя, "
        "говорили, что {hero} — {trait} и {trait2}.",
        "Под кроватью что-то зашуршало, и оттуда с улыбкой {h_peeked} {hero}. «Сегодня, — "
        "{h_said} {hero}, — мы отправимся искать {obj_acc}».",
    ],
}

MIDDLES = {
    "en": [
        "Together they climbed a ladder made of moonbeams and walked along the roofs of the "
        "sleeping town. The wind told them stories, and the owls showed them the way.",
        "They sailed across a lake of silver mist in a boat made from an old slipper. Fish with "
        "glowing tails swam beside them and sang quiet songs.",
        "The path led them into a forest where the trees were taller than clouds. It was dark, "
        "but {hero} {h_strength_en}, and so they were not afraid.",
        "At the top of a hill they met a grumpy little cloud who would not let them pass. "
        "{child} listened to the cloud for a long time, and the cloud finally smiled.",
    ],
    "ru": [
        "Вместе они поднялись по лестнице из лунных лучей и прошли по крышам спящего города. "
        "Ветер рассказывал им сказки, а совы показывали дорогу.",
        "Они переплыли серебристое туманное озеро в лодке из старого тапочка. Рядом плыли рыбки "
        "со светящимися хвостиками и тихонько пели песни.",
        "Тропинка привела их в лес, где деревья были выше облаков. Было темно, но {hero} "
        "{h_strength_ru}, и поэтому им совсем не было страшно.",
        "На вершине холма им встретилось ворчливое облачко, которое не хотело их пропускать. "
        "{child} долго-долго {c_listened} облачко, и в конце концов оно улыбнулось.",
    ],
}

ENDINGS = {
    "en": [
        "When they finally found {obj_text}, it glowed so warmly that the whole sky grew "
        'brighter. {child} yawned, and {hero} tucked {c_them} into bed. "Goodnight," '
        'whispered {hero}. "See you in your dreams."',
        "By the time the first bird woke up, {child} was back in bed, holding a tiny "
        "souvenir from the adventure. {C_they} smiled and fell fast asleep.",
        "And so {obj_text} was safe again. {child} closed {c_their} eyes, and the night "
        "wrapped the whole house in a soft, starry blanket.",
    ],
    "ru": [
        "Когда они наконец нашли {obj_acc}, вокруг стало так светло и тепло, что всё небо "
        "засияло. {child} {c_yawned}, а {hero} бережно {h_tucked} одеяло. «Спокойной ночи, — "
        "{h_whispered} {hero}. — Увидимся во сне».",
        "Когда проснулась первая птичка, {child} уже {c_was} в своей кровати и "
        "{c_held} в ладошке маленький сувенир из путешествия. А потом крепко-крепко {c_fell}.",
        "Так всё снова стало хорошо. {child} {c_closed} глаза, и ночь укутала весь дом мягким "
        "звёздным одеялом.",
    ],
}

MORALS = {
    "en": [
        "Kindness is a kind of magic.",
        "Being brave doesn't mean never being afraid.",
        "Friends help each other, even in the dark.",
        "Every mistake is a chance to learn something new.",
        "Sharing makes joy grow bigger.",
        "Patience brings its own reward.",
        "Listening carefully can solve the biggest problems.",
        "Home is wherever the people who love you are.",
    ],
    "ru": [
        "Доброта — это тоже волшебство.",
        "Быть смелым — не значит ничего не бояться.",
        "Друзья помогают друг другу даже в темноте.",
        "Каждая ошибка — это возможность узнать что-то новое.",
        "Радость становится больше, когда ею делишься.",
        "Терпение всегда вознаграждается.",
        "Умение слушать помогает решить самые трудные задачи.",
        "Дом там, где тебя любят.",
    ],
}

EN_PRONOUNS = {
    "male": {"they": "he", "them": "him", "their": "his", "were": "was"},
    "female": {"they": "she", "them": "her", "their": "her", "were": "was"},
    "other": {"they": "they", "them": "them", "their": "their", "were": "were"},
}

RU_VERBS = {
    # key: (masculine, feminine)
    "could": ("мог", "могла"),
    "got_ready": ("готовился", "готовилась"),
    "found": ("нашёл", "нашла"),
    "stepped": ("вышел", "вышла"),
    "peeked": ("выглянул", "выглянула"),
    "said": ("сказал", "сказала"),
    "yawned": ("зевнул", "зевнула"),
    "was": ("был", "была"),
    "held": ("держал", "держала"),
    "fell": ("уснул", "уснула"),
    "closed": ("закрыл", "закрыла"),
    "loved": ("любил", "любила"),
    "listened": ("слушал", "слушала"),
    "whispered": ("прошептал", "прошептала"),
    "tucked": ("поправил", "поправила"),
}

MODELS = (("gpt-4o-mini", 55), ("gpt-4o", 20), ("gpt-4.1-mini", 15), ("claude-3-5-haiku", 10))
TTS_PROVIDERS = {
    "en": (
        ("openai-tts", ("alloy", "nova", "shimmer", "fable")),
        ("elevenlabs", ("Rachel", "Adam")),
    ),
    "ru": (("yandex-speechkit", ("alena", "filipp", "jane")), ("elevenlabs", ("Rachel", "Adam"))),
}
PROMPT_VERSIONS = ("v2", "v3", "v3.1")


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def _rng(seed: int, stream: str) -> random.Random:
    """An independent, reproducible stream per purpose (str seeds hash with SHA-512)."""
    return random.Random(f"tales-seed:{seed}:{stream}")


def _ids(seed: int, entity: str) -> Iterator[uuid.UUID]:
    rng = _rng(seed, f"{entity}-ids")
    while True:
        yield uuid.UUID(int=rng.getrandbits(128), version=4)


def _ru(gender: str, pair: tuple[str, str]) -> str:
    return pair[1] if gender == "female" else pair[0]


def _timestamp(rng: random.Random, now: datetime, not_before: datetime | None = None) -> datetime:
    start = now - SPREAD
    if not_before is not None and not_before > start:
        start = not_before
    span = int((now - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, max(span, 0)))


def age_category(age: int) -> str | None:
    for low, high, name in AGE_CATEGORIES:
        if low <= age <= high:
            return name
    return None


def language_of_name(name: str) -> str:
    return "ru" if any("\u0400" <= ch <= "\u04ff" for ch in name) else "en"


def _hero_name(rng: random.Random, language: str) -> tuple[str, str]:
    title, implied = rng.choice(HERO_TITLES[language])
    gender = implied or rng.choices(GENDERS, weights=(45, 45, 10))[0]
    return f"{title} {rng.choice(HERO_NAMES[language])}", gender


def _traits(rng: random.Random, language: str, gender: str, k: int) -> list[str]:
    chosen = rng.sample(PERSONALITY_TRAITS[language], k)
    if language == "ru":
        return [_ru(gender, pair) for pair in chosen]  # type: ignore[arg-type]
    return list(chosen)  # type: ignore[arg-type]


def hero_rows(count: int, seed: int, now: datetime) -> Iterator[dict[str, Any]]:
    rng = _rng(seed, "heroes")
    ids = _ids(seed, "hero")
    for _ in range(count):
        language = rng.choices(LANGUAGES, weights=(55, 45))[0]
        name, gender = _hero_name(rng, language)
        creature = rng.choice(CREATURES[language])
        detail = rng.choice(APPEARANCE_DETAILS[language])
        if language == "en":
            appearance = f"A {creature} with {detail}."
        else:
            appearance = f"{creature[0].upper()}{creature[1:]} с {detail}."
        created = _timestamp(rng, now)
        yield {
            "id": next(ids),
            "version": 1,
            "created_at": created,
            "updated_at": created,
            "name": name,
            "age": rng.randint(*CREATURE_AGES) if rng.random() < 0.2 else rng.randint(5, 40),
            "gender": gender,
            "appearance": appearance,
            "personality_traits": _traits(rng, language, gender, rng.randint(2, 4)),
            "interests": rng.sample(INTERESTS[language], rng.randint(1, 4)),
            "strengths": rng.sample(STRENGTHS[language], rng.randint(1, 3)),
            "language": language,
        }


def child_rows(count: int, seed: int, now: datetime) -> Iterator[dict[str, Any]]:
    rng = _rng(seed, "children")
    ids = _ids(seed, "child")
    for _ in range(count):
        language = rng.choices(LANGUAGES, weights=(55, 45))[0]
        gender = rng.choices(GENDERS, weights=(47, 47, 6))[0]
        age = rng.randint(3, 12)
        created = _timestamp(rng, now)
        yield {
            "id": next(ids),
            "version": 1,
            "created_at": created,
            "updated_at": created,
            "name": rng.choice(CHILD_NAMES[language][gender]),
            "age": age,
            # a few parents never filled the category in
            "age_category": age_category(age) if rng.random() < 0.95 else None,
            "gender": gender,
            "interests": rng.sample(INTERESTS[language], rng.randint(1, 4)),
        }


def _snapshot(child: dict[str, Any]) -> dict[str, Any]:
    """The child_* fields of a story, exactly as the API copies them on create."""
    return {
        "child_name": child["name"],
        "age_category": child["age_category"],
        "child_gender": child["gender"],
        "child_interests": list(child["interests"]),
    }


def _story_text(
    rng: random.Random,
    language: str,
    hero: dict[str, Any],
    child_name: str,
    child_gender: str,
    interests: Sequence[str],
) -> tuple[str, str]:
    """(title, content) of a story: a few paragraphs built from templates."""
    obj_title, obj_text = rng.choice(STORY_OBJECTS[language])
    hero_gender = hero["gender"]
    traits = hero["personality_traits"] or _traits(rng, language, hero_gender, 2)
    strengths = hero["strengths"] or rng.sample(STRENGTHS[language], 1)
    interest = rng.choice(list(interests) or INTERESTS[language])
    values: dict[str, str] = {
        "hero": hero["name"],
        "child": child_name,
        "interest": interest,
        "obj_title": obj_title,
        "trait": traits[0],
        "trait2": traits[-1] if len(traits) > 1 else traits[0],
    }
    if language == "en":
        pronouns = EN_PRONOUNS[child_gender]
        values.update(
            {
                "obj_text": obj_text,
                "obj_cap": obj_text[0].upper() + obj_text[1:],
                "h_description": hero["appearance"].rstrip(".").lower(),
                "h_strength_en": strengths[0],
                "C_they": pronouns["they"].capitalize(),
                "c_them": pronouns["them"],
                "c_their": pronouns["their"],
                "c_were": pronouns["were"],
            }
        )
    else:
        values.update(
            {
                "obj_acc": obj_text,
                "h_description": hero["appearance"].rstrip(".").lower(),
                "h_strength_ru": strengths[0],
            }
        )
        for key, pair in RU_VERBS.items():
            values[f"c_{key}"] = _ru(child_gender, pair)
            values[f"h_{key}"] = _ru(hero_gender, pair)
    title = rng.choice(TITLE_TEMPLATES[language]).format_map(values)
    paragraphs = [rng.choice(OPENINGS[language]), rng.choice(MEETINGS[language])]
    middles = sorted(rng.sample(range(len(MIDDLES[language])), rng.randint(1, 3)))
    paragraphs += [MIDDLES[language][index] for index in middles]
    paragraphs.append(rng.choice(ENDINGS[language]))
    content = "\n\n".join(p.format_map(values) for p in paragraphs)
    return title[:300], content


def _audio_file(rng: random.Random, story_id: uuid.UUID, language: str, minutes: int) -> dict:
    provider, voices = rng.choice(TTS_PROVIDERS[language])
    return {
        "url": f"https://cdn.tales.example/audio/{story_id}.mp3",
        "provider": provider,
        "metadata": {
            "voice": rng.choice(voices),
            "format": "mp3",
            "bitrate_kbps": rng.choice((64, 96, 128)),
            "duration_seconds": minutes * 60 + rng.randint(-40, 40),
            "language": language,
        },
    }


def _generation_info(rng: random.Random, model: str, content: str, language: str) -> dict:
    prompt_tokens = rng.randint(180, 420)
    # Cyrillic text costs roughly twice as many tokens per character
    completion_tokens = len(content) // (2 if language == "ru" else 4) + rng.randint(0, 40)
    return {
        "model": model,
        "prompt_version": rng.choice(PROMPT_VERSIONS),
        "temperature": rng.choice((0.7, 0.8, 0.9, 1.0)),
        "max_tokens": 2048,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "generation_time_ms": rng.randint(1800, 14000),
        "finish_reason": "stop",
    }


def story_rows(
    count: int,
    seed: int,
    now: datetime,
    children: Sequence[dict[str, Any]],
    heroes: Sequence[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Most stories belong to one of `children`, some feature one of `heroes`."""
    rng = _rng(seed, "stories")
    ids = _ids(seed, "story")
    heroes_by_language = {lang: [h for h in heroes if h["language"] == lang] for lang in LANGUAGES}
    model_names, model_weights = zip(*MODELS, strict=True)
    for _ in range(count):
        story_id = next(ids)
        child = rng.choice(children) if children and rng.random() < 0.9 else None
        if child is not None:
            snapshot = _snapshot(child)
            language = language_of_name(child["name"])
            gender = child["gender"]
        else:
            # an anonymous story: the snapshot was typed in, no child record behind it
            language = rng.choices(LANGUAGES, weights=(55, 45))[0]
            gender = rng.choices(GENDERS, weights=(47, 47, 6))[0]
            age = rng.randint(3, 12)
            snapshot = {
                "child_name": rng.choice(CHILD_NAMES[language][gender]),
                "age_category": age_category(age),
                "child_gender": gender,
                "child_interests": rng.sample(INTERESTS[language], rng.randint(1, 3)),
            }
        candidates = heroes_by_language[language]
        hero = rng.choice(candidates) if candidates and rng.random() < 0.4 else None
        if hero is None:
            # the story's hero was invented for this story only
            name, hero_gender = _hero_name(rng, language)
            creature = rng.choice(CREATURES[language])
            appearance = f"a {creature}" if language == "en" else creature
            text_hero: dict[str, Any] = {
                "name": name,
                "gender": hero_gender,
                "appearance": appearance,
                "personality_traits": _traits(rng, language, hero_gender, 2),
                "strengths": rng.sample(STRENGTHS[language], 1),
            }
        else:
            text_hero = hero
        title, content = _story_text(
            rng,
            language,
            text_hero,
            snapshot["child_name"],
            gender,
            snapshot["child_interests"],
        )
        not_before = max(
            (row["created_at"] for row in (child, hero) if row is not None), default=None
        )
        created = _timestamp(rng, now, not_before)
        minutes = rng.choice((3, 5, 5, 7, 7, 10, 10, 12, 15))
        model = rng.choices(model_names, weights=model_weights)[0]
        generation_info = _generation_info(rng, model, content, language)
        full_response = None
        if rng.random() < 0.15:
            full_response = {
                "id": f"resp_{story_id.hex[:24]}",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop"}],
                "usage": {
                    key: generation_info[key]
                    for key in ("prompt_tokens", "completion_tokens", "total_tokens")
                },
            }
        yield {
            "id": story_id,
            "version": 1,
            "created_at": created,
            "updated_at": created,
            "title": title,
            "content": content,
            "moral": rng.choice(MORALS[language]) if rng.random() < 0.9 else "",
            "language": language,
            "child_id": child["id"] if child is not None else None,
            "hero_id": hero["id"] if hero is not None else None,
            **snapshot,
            "story_length": minutes,
            "rating": rng.choices(range(1, 11), weights=(1, 1, 1, 2, 3, 5, 8, 12, 14, 12))[0]
            if rng.random() < 0.7
            else None,
            "audio_file": _audio_file(rng, story_id, language, minutes)
            if rng.random() < 0.3
            else None,
            "model_used": model,
            "full_response": full_response,
            "generation_info": generation_info,
        }


# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------

TABLES: tuple[type[Base], ...] = (Hero, Child, Story)


def _sqlite_file_missing(database_url: str) -> bool:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return False
    return not Path(database).exists()


def _missing_tables(connection: Connection) -> list[str]:
    present = set(inspect(connection).get_table_names())
    return [model.__tablename__ for model in TABLES if model.__tablename__ not in present]


async def check_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        missing = await connection.run_sync(_missing_tables)
    if missing:
        raise SchemaMissing(
            f"database schema is missing (no table {', '.join(missing)}): run `make migrate` first"
        )


async def _check_not_seeded(engine: AsyncEngine, counts: Counts, seed: int) -> None:
    """Ids come from the seed: a second run with the same seed would collide half-way."""
    async with engine.connect() as connection:
        for model, entity, count in (
            (Hero, "hero", counts.heroes),
            (Child, "child", counts.children),
            (Story, "story", counts.stories),
        ):
            if count == 0:
                continue
            first_id = next(_ids(seed, entity))
            table: Any = model
            if await connection.scalar(select(exists().where(table.id == first_id))):
                raise SeedRefused(
                    f"the database already holds the {model.__tablename__} of --seed {seed}: "
                    "use another --seed or an empty database"
                )


async def _existing(connection: AsyncConnection, model: Any, columns: Iterable[str]) -> list[dict]:
    stmt = select(*(getattr(model, c) for c in columns)).order_by(model.id)
    rows = await connection.execute(stmt.limit(EXISTING_POOL_LIMIT))
    return [dict(row._mapping) for row in rows]


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _insert(
    engine: AsyncEngine,
    model: type[Base],
    rows: Iterable[dict[str, Any]],
    batch_size: int,
    advance: Callable[[int], object],
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    inserted = 0
    for batch in _batches(rows, batch_size):
        async with engine.begin() as connection:
            await connection.execute(insert(model), batch)
        inserted += len(batch)
        if keep is not None:
            for row in batch:
                keep(row)
        advance(len(batch))
        logger.debug("inserted %d rows into %s", len(batch), model.__tablename__)
    return inserted


HERO_POOL_COLUMNS = (
    "id",
    "name",
    "gender",
    "appearance",
    "personality_traits",
    "strengths",
    "language",
    "created_at",
)
CHILD_POOL_COLUMNS = ("id", "name", "age_category", "gender", "interests", "created_at")


async def seed_database(
    database_url: str,
    counts: Counts,
    *,
    seed: int,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool | None = None,
) -> SeedReport:
    """Insert `counts` rows; raises `SeedRefused` (schema missing, seed already used).

    `now` is the end of the 90-day window the timestamps are spread over; by default the
    start of the current UTC day, so that the same seed on the same day gives identical rows.
    """
    if now is None:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if _sqlite_file_missing(database_url):
        raise SchemaMissing("database file does not exist: run `make migrate` first")
    started = time.perf_counter()
    engine = create_engine(load_settings(database_url=database_url))
    try:
        await check_schema(engine)
        await _check_not_seeded(engine, counts, seed)
        show = counts.total > PROGRESS_THRESHOLD if progress is None else progress
        with tqdm(
            total=counts.total, unit="row", desc="seeding", file=sys.stderr, disable=not show
        ) as bar:
            heroes: list[dict[str, Any]] = []
            children: list[dict[str, Any]] = []
            await _insert(
                engine,
                Hero,
                hero_rows(counts.heroes, seed, now),
                batch_size,
                bar.update,
                heroes.append,
            )
            await _insert(
                engine,
                Child,
                child_rows(counts.children, seed, now),
                batch_size,
                bar.update,
                children.append,
            )
            if counts.stories:
                async with engine.connect() as connection:
                    # nothing of a kind created in this run: the stories use what is there
                    if not heroes:
                        heroes = await _existing(connection, Hero, HERO_POOL_COLUMNS)
                    if not children:
                        children = await _existing(connection, Child, CHILD_POOL_COLUMNS)
            stats = {"child": 0, "hero": 0}

            def count_links(row: dict[str, Any]) -> None:
                stats["child"] += row["child_id"] is not None
                stats["hero"] += row["hero_id"] is not None

            await _insert(
                engine,
                Story,
                story_rows(counts.stories, seed, now, children, heroes),
                batch_size,
                bar.update,
                count_links,
            )
    finally:
        await engine.dispose()
    return SeedReport(
        counts=counts,
        seed=seed,
        seconds=time.perf_counter() - started,
        stories_with_child=stats["child"],
        stories_with_hero=stats["hero"],
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="small",
        help="preset counts: "
        + ", ".join(f"{n}={c.heroes}/{c.children}/{c.stories}" for n, c in SIZES.items())
        + " heroes/children/stories (default: small)",
    )
    parser.add_argument("--heroes", type=_count, help="number of heroes (overrides --size)")
    parser.add_argument("--children", type=_count, help="number of children (overrides --size)")
    parser.add_argument("--stories", type=_count, help="number of stories (overrides --size)")
    parser.add_argument(
        "--seed",
        type=int,
        help="random seed; the same seed gives the same rows (default: a random one, printed)",
    )


def counts_from_args(args: argparse.Namespace) -> Counts:
    preset = SIZES[args.size]
    return Counts(
        heroes=preset.heroes if args.heroes is None else args.heroes,
        children=preset.children if args.children is None else args.children,
        stories=preset.stories if args.stories is None else args.stories,
    )


def _describe(exc: BaseException) -> str:
    """The error without the statement parameters SQLAlchemy appends (they hold names)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:300]


def run(args: argparse.Namespace) -> int:
    """Entry point of `python -m app seed`; returns the exit code."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    counts = counts_from_args(args)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    backend = make_url(settings.database_url).get_backend_name()
    try:
        report = asyncio.run(seed_database(settings.database_url, counts, seed=seed))
    except SeedRefused as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (SQLAlchemyError, OSError) as exc:
        print(f"seed: database error on {backend}: {_describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"seeded {report.counts.heroes} heroes, {report.counts.children} children, "
        f"{report.counts.stories} stories ({report.stories_with_child} with a child, "
        f"{report.stories_with_hero} with a hero) into {backend} "
        f"in {report.seconds:.1f}s (--seed {report.seed})"
    )
    return EXIT_OK
