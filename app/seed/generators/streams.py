"""Seeded randomness of the generators: one independent, reproducible random stream per
purpose, the entity ids drawn from one, weighted and chance picks, and timestamps spread
over the days before a reference day."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

#: Timestamps fall within this span before the reference day ("now").
SPREAD = timedelta(days=90)

#: Prefix of every stream's seed string (str seeds are hashed with SHA-512).
STREAM_PREFIX = "tales-seed"
UUID_BITS = 128
UUID_VERSION = 4

T = TypeVar("T")


def stream(seed: int, purpose: str) -> random.Random:
    """An independent, reproducible stream per purpose."""
    return random.Random(f"{STREAM_PREFIX}:{seed}:{purpose}")


def entity_ids(seed: int, entity: str) -> Iterator[uuid.UUID]:
    """The ids of an entity's rows for `seed`, in order (a stream of their own)."""
    rng = stream(seed, f"{entity}-ids")
    while True:
        yield uuid.UUID(int=rng.getrandbits(UUID_BITS), version=UUID_VERSION)


def pick_weighted(rng: random.Random, weights: Mapping[T, int]) -> T:
    """One key of `weights`, with the probability of its relative weight."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def chance(rng: random.Random, probability: float) -> bool:
    """True with `probability` (one draw of the stream)."""
    return rng.random() < probability


def timestamp(rng: random.Random, now: datetime, not_before: datetime | None = None) -> datetime:
    """A moment in the `SPREAD` before `now`, not before `not_before`, to the second."""
    start = now - SPREAD
    if not_before is not None and not_before > start:
        start = not_before
    span = int((now - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, max(span, 0)))
