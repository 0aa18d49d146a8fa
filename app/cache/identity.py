"""Which Redis dataset a connection reaches, checked before anything is read over it.

A Redis restarted from an older snapshot or AOF, or a replica promoted while it lagged,
holds older data than the cache's last invalidations: post-write markers and generation
moves may be missing, and older entries back in their place. Nothing in an entry tells.
So every new connection of the cache client, before its first command, runs this check
(redis-py's `redis_connect_func`, after the usual AUTH/HELLO/CLIENT SETNAME/SELECT):

1. `INFO server` gives the server's `run_id`: a new random one each time a redis-server
   process starts, and another one on every server (a promoted replica has its own).
2. One script compares it with the identity stored under the prefix, `{prefix}identity` =
   "<run id> <token>". The same run id: a process of this service already recognized this
   server process since it started, and moved the epochs then; nothing to do. Another run id
   (an older snapshot holds the old one) or none: this server's data may be older than what
   the cache was written against. Atomically, every entity's epoch gets a *fresh random*
   value (not INCR: an increment could land on an epoch in use before the restart, and
   fills read under it would be accepted), and the identity is rewritten with this run id
   and a new token.
3. When the identity differs from the one this process last saw, its process-local state
   taken from the older dataset (single flights, near copies) is dropped
   (`CacheService.redis_identity_changed`).

Only then is the connection handed to the command that opened it: no read is served from an
unrecognized dataset. A failure of the check fails the connection (and that operation).

The cost of a false alarm (a restart that lost nothing, e.g. with `appendfsync always`): the
entries and pages of every entity are missed once and refilled from the database.
Not covered: a dataset replaced while the server process keeps its run id (`DEBUG RELOAD`,
`FLUSHALL`, or an identity key evicted: the latter two are recognized at the next new
connection, as the identity is then missing).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError

from app.cache import format

logger = logging.getLogger(__name__)

#: Where the identity is kept, after the prefix.
IDENTITY_KEY = "identity"
TOKEN_BYTES = 8
_RUN_ID_FIELD = b"run_id:"

# KEYS: identity, epochs...   ARGV: run id, new token, a fresh value per epoch
# -> the identity now stored
IDENTIFY = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
  return current
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1])
end
local identity = ARGV[1] .. ' ' .. ARGV[2]
redis.call('SET', KEYS[1], identity)
return identity
"""


class RedisIdentityError(ConnectionError):
    """The server did not say which process it is: the connection is not used (a Redis
    error, so the guard answers a miss)."""


def run_id_of(info: bytes | str) -> str:
    """The `run_id` field of an `INFO server` reply."""
    raw = info.encode() if isinstance(info, str) else info
    for line in raw.splitlines():
        if line.startswith(_RUN_ID_FIELD):
            return line[len(_RUN_ID_FIELD) :].strip().decode()
    raise RedisIdentityError("INFO server did not name a run_id")


class DatasetIdentity:
    """The check of each new connection (see the module docstring)."""

    def __init__(
        self, prefix: str, epoch_keys: Sequence[str], on_change: Callable[[str], None]
    ) -> None:
        self.key = f"{prefix}{IDENTITY_KEY}"
        self.epoch_keys = list(epoch_keys)
        self.known: str | None = None  # the identity this process last saw
        self.changes = 0  # times the identity seen differed from the one known
        self._on_change = on_change

    async def on_connect(self, connection: AbstractConnection) -> None:
        """redis-py's `redis_connect_func`: the usual hand-shake, then the check."""
        await connection.on_connect()
        await connection.send_command("INFO", "server")
        run_id = run_id_of(await connection.read_response())
        fresh = [format.fresh_counter() for _ in self.epoch_keys]
        await connection.send_command(
            "EVAL",
            IDENTIFY,
            1 + len(self.epoch_keys),
            self.key,
            *self.epoch_keys,
            run_id,
            secrets.token_hex(TOKEN_BYTES),
            *fresh,
        )
        reply = await connection.read_response()
        identity = reply.decode() if isinstance(reply, bytes) else str(reply)
        self.recognized(identity)

    def recognized(self, identity: str) -> None:
        if identity == self.known:
            return
        previous, self.known = self.known, identity
        if previous is not None:
            self.changes += 1
            logger.warning("Redis dataset changed (another server or a restart): epochs moved")
        self._on_change(identity)
