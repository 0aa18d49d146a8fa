"""`python -m app seed`: counts, child snapshots, determinism, refusal without a schema,
the vocabulary file."""

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.children.models import Child
from app.core.database import create_engine
from app.heroes.models import Hero
from app.main import load_settings
from app.seed import SIZES, Counts, SchemaMissing, SeedRefused, seed_database
from app.seed.generators import child_rows, hero_rows, story_rows
from app.seed.vocabulary import VOCABULARY_FILE, VocabularyError, parse_vocabulary, vocabulary
from app.stories.models import Story
from app.stories.rules import child_snapshot
from tests.conftest import ROOT, migrate

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SMALL = SIZES["small"]
TABLES = ("heroes", "children", "stories")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def migrated_url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "seed.db")
    migrate(url)
    return url


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "seed", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def fetch_all(database_url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(load_settings(database_url=database_url))
    try:
        async with engine.connect() as connection:
            result = {}
            for model in (Hero, Child, Story):
                rows = await connection.execute(select(model).order_by(model.id))
                result[model.__tablename__] = [dict(row._mapping) for row in rows]
            return result
    finally:
        await engine.dispose()


def test_cli_seeds_small_size(migrated_url: str) -> None:
    done = run_cli(migrated_url, "--size", "small", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert "20 heroes, 10 children, 50 stories" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1  # a one-line summary, no progress bar
    path = migrated_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
    assert counts == [SMALL.heroes, SMALL.children, SMALL.stories]


def test_cli_explicit_counts_override_size(migrated_url: str) -> None:
    done = run_cli(migrated_url, "--size", "medium", "--heroes", "3", "--children", "0")
    assert done.returncode == 0, done.stderr
    assert "3 heroes, 0 children, 1000 stories" in done.stdout


@pytest.mark.parametrize("kind", ["no_file", "empty_file"])
def test_cli_refuses_without_schema(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "unmigrated.db"
    if kind == "empty_file":
        sqlite3.connect(path).close()
    done = run_cli(sqlite_url(path), "--size", "small")
    assert done.returncode == 2
    assert "make migrate" in done.stderr
    assert path.exists() == (kind == "empty_file")  # a missing file is not created


async def test_counts_and_child_snapshots(migrated_url: str) -> None:
    report = await seed_database(migrated_url, SMALL, seed=3, now=NOW)
    assert report.counts == SMALL
    data = await fetch_all(migrated_url)
    heroes = {row["id"]: row for row in data["heroes"]}
    children = {row["id"]: row for row in data["children"]}
    stories = data["stories"]
    assert (len(heroes), len(children), len(stories)) == (20, 10, 50)

    linked = [story for story in stories if story["child_id"] is not None]
    assert len(linked) > len(stories) // 2  # most stories belong to a child
    assert report.stories_with_child == len(linked)
    for story in linked:
        child = children[story["child_id"]]
        assert story["child_name"] == child["name"]
        assert story["age_category"] == child["age_category"]
        assert story["child_gender"] == child["gender"]
        assert story["child_interests"] == child["interests"]

    with_hero = [story for story in stories if story["hero_id"] is not None]
    assert 0 < len(with_hero) < len(stories)
    for story in with_hero:
        assert story["language"] == heroes[story["hero_id"]]["language"]

    rows = [*heroes.values(), *children.values(), *stories]
    assert {row["version"] for row in rows} == {1}
    for row in rows:
        assert NOW - timedelta(days=90) <= row["created_at"] <= NOW
        assert row["updated_at"] == row["created_at"]
    assert {hero["language"] for hero in heroes.values()} == {"en", "ru"}
    assert {story["language"] for story in stories} == {"en", "ru"}
    assert any(story["audio_file"] is not None for story in stories)
    assert all(story["generation_info"] for story in stories)


@pytest.fixture
def three_migrated_urls(tmp_path: Path) -> list[str]:
    urls = [sqlite_url(tmp_path / f"{name}.db") for name in ("a", "b", "c")]
    for url in urls:
        migrate(url)  # Alembic runs its own event loop: not inside an async test
    return urls


async def test_same_seed_gives_same_rows(three_migrated_urls: list[str]) -> None:
    urls = three_migrated_urls
    await seed_database(urls[0], SMALL, seed=42, now=NOW)
    await seed_database(urls[1], SMALL, seed=42, now=NOW)
    await seed_database(urls[2], SMALL, seed=43, now=NOW)
    first, second, other = [await fetch_all(url) for url in urls]
    assert first == second
    assert first["stories"] != other["stories"]


async def test_stories_only_use_existing_children(migrated_url: str) -> None:
    await seed_database(migrated_url, Counts(heroes=5, children=4, stories=0), seed=5, now=NOW)
    await seed_database(migrated_url, Counts(heroes=0, children=0, stories=30), seed=6, now=NOW)
    data = await fetch_all(migrated_url)
    children = {row["id"]: row for row in data["children"]}
    linked = [story for story in data["stories"] if story["child_id"] is not None]
    assert linked
    for story in linked:
        assert story["child_name"] == children[story["child_id"]]["name"]


async def test_same_seed_twice_is_refused(migrated_url: str) -> None:
    await seed_database(migrated_url, SMALL, seed=9, now=NOW)
    with pytest.raises(SeedRefused):
        await seed_database(migrated_url, SMALL, seed=9, now=NOW)


async def test_missing_schema_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(SchemaMissing, match="make migrate"):
        await seed_database(sqlite_url(path), SMALL, seed=1, now=NOW)


VOCABULARY_SECTIONS = {
    "about",
    "interests",
    "heroes",
    "children",
    "stories",
    "grammar",
    "generation",
}


def vocabulary_json() -> dict[str, Any]:
    text = resources.files("app.seed").joinpath(VOCABULARY_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_vocabulary_file_loads_with_its_sections() -> None:
    assert set(vocabulary_json()) == VOCABULARY_SECTIONS
    words = vocabulary()
    assert words is vocabulary()  # read once
    for by_language in (words.interests, words.heroes.names, words.stories.openings):
        assert set(by_language) == {"en", "ru"}
    assert set(words.children.names["ru"]) == {"male", "female", "other"}


def test_malformed_vocabulary_fails_naming_each_problem() -> None:
    data = vocabulary_json()
    del data["stories"]["morals"]["ru"]
    data["heroes"]["strengths"]["en"] = ["can fly"]  # sampled: needs several
    data["grammar"]["en_pronouns"]["other"]["were"] = 1
    with pytest.raises(VocabularyError) as raised:
        parse_vocabulary(json.dumps(data), "broken.json")
    message = str(raised.value)
    assert message.startswith("malformed seed vocabulary broken.json (3 problems)")
    for location in ("stories.morals", "heroes.strengths.en", "grammar.en_pronouns.other.were"):
        assert location in message
    with pytest.raises(VocabularyError, match="Invalid JSON"):
        parse_vocabulary("{", "broken.json")


def test_story_of_a_child_carries_its_snapshot() -> None:
    children = list(child_rows(10, 7, NOW))
    heroes = list(hero_rows(10, 7, NOW))
    by_id = {child["id"]: child for child in children}
    stories = list(story_rows(50, 7, NOW, children, heroes))
    linked = [story for story in stories if story["child_id"] is not None]
    assert linked
    for story in linked:
        child = by_id[story["child_id"]]
        expected = child_snapshot(
            child["name"], child["age_category"], child["gender"], child["interests"]
        )
        assert {field: story[field] for field in expected} == expected
