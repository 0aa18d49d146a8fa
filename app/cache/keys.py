"""User values in cache keys: percent-encoded, or hashed when long or personal.

Every user-supplied value is percent-encoded (glob characters, `:` and `%` included), so no
value can form a glob pattern or run into the next key segment. Values that would be long
are hashed, and values that are personal data (children's names) are always hashed, keyed
with `CACHE_KEY_SALT`: keys show up in logs and in `redis-cli`, a child's name must not.
A hashed value starts with `#`, a character encoding never leaves, so the two never collide.
"""

import hashlib
from urllib.parse import quote

MAX_PLAIN_LENGTH = 64
BLAKE2B_MAX_KEY_BYTES = 64
DIGEST_BYTES = 16


class KeyEncoder:
    def __init__(self, salt: bytes = b"") -> None:
        self._salt = salt

    def hashed(self, value: object) -> str:
        digest = hashlib.blake2b(
            str(value).encode(), key=self._salt[:BLAKE2B_MAX_KEY_BYTES], digest_size=DIGEST_BYTES
        ).hexdigest()
        return f"#{digest}"

    def plain(self, value: object) -> str:
        encoded = quote(str(value), safe="")
        return encoded if len(encoded) <= MAX_PLAIN_LENGTH else self.hashed(value)

    def encode(self, value: object, *, personal: bool = False) -> str:
        return self.hashed(value) if personal else self.plain(value)


def escape_glob(literal: str) -> str:
    """Escape a literal for a Redis MATCH pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in literal)
