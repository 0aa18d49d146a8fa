"""What a story carries beside its text: length, moral, rating, the audio file of its
reading, and the accounting of the language model that wrote it."""

from __future__ import annotations

import random
import uuid
from typing import Any

from app.seed.generators.population import RU
from app.seed.generators.streams import chance, pick_weighted
from app.seed.vocabulary import vocabulary

#: A story's length in minutes (repeated values are the likelier ones).
STORY_MINUTES = (3, 5, 5, 7, 7, 10, 10, 12, 15)
MORAL_PROBABILITY = 0.9
NO_MORAL = ""

#: Ratings 1..10 and how often parents give each.
RATINGS = range(1, 11)
RATING_WEIGHTS = (1, 1, 1, 2, 3, 5, 8, 12, 14, 12)
RATING_PROBABILITY = 0.7

AUDIO_PROBABILITY = 0.3
AUDIO_URL = "https://cdn.tales.example/audio/{story_id}.mp3"
AUDIO_FORMAT = "mp3"
AUDIO_BITRATES_KBPS = (64, 96, 128)
#: The reading is this many seconds shorter or longer than the story's nominal length.
AUDIO_DRIFT_SECONDS = 40
SECONDS_PER_MINUTE = 60

PROMPT_TOKENS = (180, 420)
#: Characters per completion token: Cyrillic text costs roughly twice as many tokens.
CYRILLIC_CHARS_PER_TOKEN = 2
LATIN_CHARS_PER_TOKEN = 4
COMPLETION_TOKEN_JITTER = (0, 40)
TEMPERATURES = (0.7, 0.8, 0.9, 1.0)
MAX_TOKENS = 2048
GENERATION_MS = (1800, 14000)
FINISH_REASON = "stop"
FULL_RESPONSE_PROBABILITY = 0.15
#: Hex digits of the story id in the provider's response id.
RESPONSE_ID_DIGITS = 24
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def story_minutes(rng: random.Random) -> int:
    return rng.choice(STORY_MINUTES)


def moral(rng: random.Random, language: str) -> str:
    if chance(rng, MORAL_PROBABILITY):
        return rng.choice(vocabulary().stories.morals[language])
    return NO_MORAL


def rating(rng: random.Random) -> int | None:
    if chance(rng, RATING_PROBABILITY):
        return rng.choices(RATINGS, weights=RATING_WEIGHTS)[0]
    return None


def model_used(rng: random.Random) -> str:
    return pick_weighted(rng, vocabulary().generation.llm_weights)


def audio_file(
    rng: random.Random, story_id: uuid.UUID, language: str, minutes: int
) -> dict[str, Any] | None:
    """The reading of the story, for some of them."""
    if not chance(rng, AUDIO_PROBABILITY):
        return None
    provider = rng.choice(vocabulary().generation.tts_providers[language])
    return {
        "url": AUDIO_URL.format(story_id=story_id),
        "provider": provider.provider,
        "metadata": {
            "voice": rng.choice(provider.voices),
            "format": AUDIO_FORMAT,
            "bitrate_kbps": rng.choice(AUDIO_BITRATES_KBPS),
            "duration_seconds": minutes * SECONDS_PER_MINUTE
            + rng.randint(-AUDIO_DRIFT_SECONDS, AUDIO_DRIFT_SECONDS),
            "language": language,
        },
    }


def generation_info(rng: random.Random, model: str, content: str, language: str) -> dict[str, Any]:
    prompt_tokens = rng.randint(*PROMPT_TOKENS)
    chars_per_token = CYRILLIC_CHARS_PER_TOKEN if language == RU else LATIN_CHARS_PER_TOKEN
    completion_tokens = len(content) // chars_per_token + rng.randint(*COMPLETION_TOKEN_JITTER)
    return {
        "model": model,
        "prompt_version": rng.choice(vocabulary().generation.prompt_versions),
        "temperature": rng.choice(TEMPERATURES),
        "max_tokens": MAX_TOKENS,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "generation_time_ms": rng.randint(*GENERATION_MS),
        "finish_reason": FINISH_REASON,
    }


def full_response(
    rng: random.Random, story_id: uuid.UUID, model: str, info: dict[str, Any]
) -> dict[str, Any] | None:
    """The provider's raw response, kept for some stories."""
    if not chance(rng, FULL_RESPONSE_PROBABILITY):
        return None
    return {
        "id": f"resp_{story_id.hex[:RESPONSE_ID_DIGITS]}",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": FINISH_REASON}],
        "usage": {key: info[key] for key in USAGE_KEYS},
    }
