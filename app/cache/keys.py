"""User values in cache keys: percent-encoded, or hashed when long or personal.

Every user-supplied value is percent-encoded (glob characters, `:` and `%` included), so no
value can form a glob pattern or run into the next key segment. Values that would be long
are hashed, and values that are personal data (children's names) are always hashed, keyed
with `CACHE_KEY_SALT`: keys show up in logs and in `redis-cli`, a child's name must not.
A hashed value starts with `#`, a character encoding never leaves, so the two never collide.

Hashing is always keyed: without `CACHE_KEY_SALT`, the salt is one the processes share
through Redis (`CacheService.load_key_salt`). Until it is known, a value cannot be hashed
(`SaltUnknown`): its key is not named at all, never named with an unkeyed hash.
"""

import hashlib
from urllib.parse import quote

MAX_PLAIN_LENGTH = 64
BLAKE2B_MAX_KEY_BYTES = 64
DIGEST_BYTES = 16


class SaltUnknown(LookupError):
    """The salt is not known yet (not configured, and Redis not reached since the start)."""


class KeyEncoder:
    def __init__(self, salt: bytes = b"") -> None:
        self._salt = salt  # b"": not known yet

    @property
    def ready(self) -> bool:
        return bool(self._salt)

    @property
    def salt(self) -> bytes:
        return self._salt

    def use_salt(self, salt: bytes) -> None:
        self._salt = salt

    def hashed(self, value: object) -> str:
        """A personal value: BLAKE2b keyed with the salt."""
        if not self._salt:
            raise SaltUnknown("the key salt is not known yet")
        return _digest(value, self._salt[:BLAKE2B_MAX_KEY_BYTES])

    def plain(self, value: object) -> str:
        """A value that is not personal: readable, or (long) hashed without a key: it only
        has to be short and collision-free, not secret."""
        encoded = quote(str(value), safe="")
        return encoded if len(encoded) <= MAX_PLAIN_LENGTH else _digest(value, b"")

    def encode(self, value: object, *, personal: bool = False) -> str:
        return self.hashed(value) if personal else self.plain(value)


def _digest(value: object, key: bytes) -> str:
    digest = hashlib.blake2b(str(value).encode(), key=key, digest_size=DIGEST_BYTES)
    return f"#{digest.hexdigest()}"


def escape_glob(literal: str) -> str:
    """Escape a literal for a Redis MATCH pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in literal)
