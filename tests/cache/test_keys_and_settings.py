"""Unit tests: Redis key encoding (app/cache/keys.py) and the cache settings' validation."""

import hashlib
import itertools
from typing import Any

import pytest

from app.cache.keys import DIGEST_BYTES, MAX_PLAIN_LENGTH, KeyEncoder, SaltUnknown, escape_glob
from app.core.settings import SettingsError, settings_class
from app.entities import ENTITIES
from app.main import load_settings
from tests.support.redis_server import RedisServer

GLOB_AND_SEPARATORS = "*?[]\\:% \n"
TRICKY = [
    "",
    "a",
    "a:b",
    "a%3Ab",
    "a%3ab",
    "a b",
    "a+b",
    "a%20b",
    "*",
    "\\*",
    "[a]",
    "%",
    "%25",
    "#",
    "#a",
    "Zoë",
    "Zo%C3%AB",
    "x" * MAX_PLAIN_LENGTH,
    "x" * (MAX_PLAIN_LENGTH + 1),
    "x" * (MAX_PLAIN_LENGTH + 2),
]


@pytest.fixture
def encoder() -> KeyEncoder:
    return KeyEncoder(b"pepper")


# -- KeyEncoder ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["a*b", "who?", "[abc]", "back\\slash", "a:b", "50%", "a b"])
def test_glob_characters_separators_and_spaces_are_encoded(encoder: KeyEncoder, value: str) -> None:
    encoded = encoder.encode(value)
    assert not set(encoded) & set("*?[]\\: \n")
    assert encoded != value
    assert not encoded.startswith("#")


def test_plain_values_stay_readable(encoder: KeyEncoder) -> None:
    assert encoder.encode("Luna") == "Luna"
    assert encoder.encode("en") == "en"
    assert encoder.encode(7) == "7"
    assert encoder.encode("a:b") == "a%3Ab"


def test_long_values_are_hashed_to_a_fixed_length(encoder: KeyEncoder) -> None:
    at_limit = "x" * MAX_PLAIN_LENGTH
    over = "x" * (MAX_PLAIN_LENGTH + 1)
    huge = "y" * 10_000
    assert encoder.encode(at_limit) == at_limit
    for value in (over, huge):
        encoded = encoder.encode(value)
        assert encoded.startswith("#")
        assert len(encoded) == len(encoder.encode(over))
        assert "xxxx" not in encoded and "yyyy" not in encoded


def test_values_whose_encoding_is_long_are_hashed(encoder: KeyEncoder) -> None:
    cyrillic = "Ё" * 20  # 20 characters, 120 once percent-encoded
    encoded = encoder.encode(cyrillic)
    assert encoded.startswith("#")
    assert len(encoded) < 64


@pytest.mark.parametrize("value", ["Al", "Zoë Secretname", "", "a" * 500])
def test_personal_values_are_always_hashed(encoder: KeyEncoder, value: str) -> None:
    encoded = encoder.encode(value, personal=True)
    assert encoded.startswith("#")
    assert encoded == encoder.encode(value, personal=True)
    assert len(encoded) == len(encoder.hashed("anything"))
    if value:
        assert value not in encoded
        assert value.lower() not in encoded.lower()


def test_personal_hashes_depend_on_the_salt() -> None:
    name = "Zoë Secretname"
    salted = KeyEncoder(b"pepper").encode(name, personal=True)
    assert salted == KeyEncoder(b"pepper").encode(name, personal=True)
    assert salted != KeyEncoder(b"other").encode(name, personal=True)
    unkeyed = hashlib.blake2b(name.encode(), digest_size=DIGEST_BYTES).hexdigest()
    assert salted != f"#{unkeyed}"


def test_personal_values_are_never_hashed_without_a_salt() -> None:
    """No salt known yet: no key is named at all (never an unkeyed, reversible hash)."""
    with pytest.raises(SaltUnknown):
        KeyEncoder().encode("Zoë Secretname", personal=True)
    assert KeyEncoder().encode("x" * 100).startswith("#")  # not personal: no salt needed


def test_encoding_is_injective_on_tricky_values(encoder: KeyEncoder) -> None:
    encodings = {value: encoder.encode(value) for value in TRICKY}
    for left, right in itertools.combinations(TRICKY, 2):
        assert encodings[left] != encodings[right], (left, right)
    hashed_values = [encoder.hashed(value) for value in TRICKY]
    assert not set(hashed_values) & {v for v in encodings.values() if not v.startswith("#")}
    assert encoder.encode(encoder.hashed("long")) != encoder.hashed("long")


def test_personal_encoding_is_injective_on_tricky_values(encoder: KeyEncoder) -> None:
    hashed = [encoder.encode(value, personal=True) for value in TRICKY]
    assert len(set(hashed)) == len(TRICKY)


def test_escaped_glob_matches_only_the_literal_prefix(redis_server: RedisServer) -> None:
    redis = redis_server.client()
    literal = "kt-escape:a*[b]?\\c:"
    matching = [f"{literal}1", f"{literal}2"]
    lookalikes = ["kt-escape:aXbY\\c:1", "kt-escape:a[b]Z\\c:1", "kt-escape:ab?\\c:1"]
    try:
        for key in matching + lookalikes:
            redis.set(key, "1")
        found = {k.decode() for k in redis.scan_iter(match=escape_glob(literal) + "*", count=1000)}
        assert found == set(matching)
    finally:
        redis.delete(*matching, *lookalikes)


# -- settings ------------------------------------------------------------------------------
@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """No settings from the machine's environment or a `.env` file."""
    for name in settings_class(ENTITIES).model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_SOCKET_TIMEOUT", "abc"),
        ("REDIS_SOCKET_TIMEOUT", "0"),
        ("REDIS_SOCKET_TIMEOUT", "-1"),
        ("REDIS_CONNECT_TIMEOUT", "1s"),
        ("REDIS_POOL_TIMEOUT", "0"),
        ("CACHE_HERO_TTL", "0"),
        ("CACHE_CHILD_TTL", "-5"),
        ("CACHE_STORY_TTL", "ten"),
        ("CACHE_DEFAULT_TTL", "1.5"),
        ("REDIS_URL", "http://x"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_ENABLED", "maybe"),
        ("REDIS_MAX_CONNECTIONS", "0"),
        ("REDIS_DB", "-1"),
        ("CACHE_KEY_PREFIX", "tales:*"),
        ("CACHE_KEY_PREFIX", ""),
        ("CACHE_LEASE_MS", "1"),
        ("CACHE_EARLY_REFRESH_BETA", "-1"),
        ("BREAKER_FAILURE_THRESHOLD", "0"),
        ("DATABASE_URL", "mysql://localhost/tales"),
        ("CACHE_NEAR_ENABLED", "perhaps"),
        ("CACHE_NEAR_MAX_BYTES", "1000"),
        ("CACHE_NEAR_MAX_BYTES", "64MB"),
        ("CACHE_NEAR_LEASE_MS", "10"),
        ("CACHE_NEAR_LEASE_MS", "600000"),
        ("CACHE_REPAIR_BOUND_MS", "0"),
        ("CACHE_REPAIR_BOUND_MS", "50"),
        ("CACHE_REPAIR_BOUND_MS", "3600000"),
        ("CACHE_REPAIR_BOUND_MS", "1s"),
        ("WEB_CONCURRENCY", "0"),
        ("ACCESS_LOG", "sometimes"),
    ],
)
def test_invalid_environment_value_names_the_variable(
    clean_environment: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_environment.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert variable in str(raised.value)


def test_every_invalid_variable_is_named(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("CACHE_HERO_TTL", "0")
    clean_environment.setenv("REDIS_URL", "http://x")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "CACHE_HERO_TTL" in str(raised.value)
    assert "REDIS_URL" in str(raised.value)


def test_fractions_of_a_second_are_accepted_for_timeouts(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("REDIS_SOCKET_TIMEOUT", "0.05")
    clean_environment.setenv("REDIS_CONNECT_TIMEOUT", ".25")
    clean_environment.setenv("REDIS_POOL_TIMEOUT", "1.5")
    clean_environment.setenv("BREAKER_COOLDOWN_SECONDS", "0.5")
    settings = load_settings()
    assert settings.redis_socket_timeout == 0.05
    assert settings.redis_connect_timeout == 0.25
    assert settings.redis_pool_timeout == 1.5
    assert settings.breaker_cooldown_seconds == 0.5


def test_cache_settings_are_read_from_the_environment(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("CACHE_HERO_TTL", "120")
    clean_environment.setenv("CACHE_CHILD_TTL", "60")
    clean_environment.setenv("CACHE_STORY_TTL", "30")
    clean_environment.setenv("REDIS_URL", "rediss://cache.internal:6380/2")
    clean_environment.setenv("REDIS_ENABLED", "false")
    clean_environment.setenv("CACHE_KEY_PREFIX", "tales-v2:")
    settings = load_settings()
    assert (settings.cache_hero_ttl, settings.cache_child_ttl, settings.cache_story_ttl) == (
        120,
        60,
        30,
    )
    assert settings.redis_url == "rediss://cache.internal:6380/2"
    assert settings.redis_enabled is False
    assert settings.cache_key_prefix == "tales-v2:"


def test_defaults_are_valid(clean_environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.redis_enabled is True
    assert settings.cache_key_prefix == "tales:"
    assert 0 < settings.redis_socket_timeout < 1


def test_a_secret_in_an_invalid_setting_is_not_echoed(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("REDIS_URL", "http://user:hunter2-secret@x")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "REDIS_URL" in str(raised.value)
    assert "hunter2-secret" not in str(raised.value)
