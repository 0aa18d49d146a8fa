"""Redis Cluster by design: every key a hit or a script reads is in one hash slot, an entity's
entries spread over every primary, and a change spanning slots is split per slot with its
near publication last (`app/cache/cluster.py`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from app.cache import cluster, format
from app.cache.keys import KeyEncoder
from app.entities import ENTITIES

SLOTS = 16384
THREE_PRIMARIES = ((0, 5460), (5461, 10922), (10923, 16383))  # redis-cli's even split


def keys(entity: str) -> format.EntityKeys:
    return format.EntityKeys(ENTITIES[entity], "tales:", KeyEncoder(b"salt"))


def test_an_entry_its_lease_and_its_epoch_share_a_slot() -> None:
    for spec in ENTITIES:
        family = keys(spec.name)
        for _ in range(200):
            entry = family.entry(uuid.uuid4())
            slots = {
                cluster.slot_of(k) for k in (entry, family.lease(entry), family.epoch_of(entry))
            }
            assert len(slots) == 1, entry


def test_a_page_its_lease_and_its_counters_share_a_slot() -> None:
    hero, child = keys("hero"), keys("child")
    queries = [
        (hero, {}),
        (hero, {"language": "en", "name": "a{b}c"}),
        (child, {"name": "Zoë", "age": 5, "gender": "female"}),
        (keys("story"), {"child_name": "Zoë", "language": "ru"}),
    ]
    for family, filters in queries:
        page = family.page(filters, 20, 0)
        read = [family.pages_epoch, family.family, family.generation(page.scope), page.base]
        read.append(family.lease(page.base))
        assert len({cluster.slot_of(k) for k in read}) == 1, read


def test_an_entitys_entries_reach_every_primary_of_three() -> None:
    for spec in ENTITIES:
        slots = {cluster.slot_of(epoch) for epoch in keys(spec.name).epochs[:-1]}
        assert len(slots) == format.ENTRY_TAGS
        assert all(any(lo <= s <= hi for s in slots) for lo, hi in THREE_PRIMARIES)


def test_per_slot_runs_each_slot_then_publishes_last_even_after_a_failure() -> None:
    hero = keys("hero")
    entries = [hero.entry(uuid.uuid4()) for _ in range(20)]
    counters = [hero.family, hero.generation("hero:all")]
    calls: list[tuple[list[str], list[str], Any]] = []

    async def call(mine: list[str], theirs: list[str], near: Any) -> Any:
        calls.append((mine, theirs, near))
        if near is None and mine and mine[0] == entries[0]:
            raise ConnectionError("a primary is down")
        return ["published"] if near else 1

    async def run() -> BaseException | None:
        try:
            await cluster.per_slot(call, entries, lambda key: key, counters, "near")
        except ConnectionError as exc:
            return exc
        return None

    assert isinstance(asyncio.run(run()), ConnectionError)  # the failure is not hidden
    *per_slot, last = calls
    assert last == ([], [], "near")  # the publication: after every slot, despite the failure
    for mine, theirs, near in per_slot:
        assert near is None
        assert len({cluster.slot_of(k) for k in (*mine, *theirs)}) == 1
    assert sorted(k for mine, _, _ in per_slot for k in mine) == sorted(entries)
    assert sorted(k for _, theirs, _ in per_slot for k in theirs) == sorted(counters)
