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

Redis Cluster: a script cannot span slots, and each primary holds its own dataset. So the
identity is kept per epoch tag, in its epochs' slot (`{prefix}identity:{hero.3}`, the
`identity` family of `format.py`), and each new connection to a node runs step 2 for every
tag, pipelined: the tags the node serves as a primary are checked against its run id; the
others answer MOVED (another node's, checked on that node's connections) and are skipped. A
primary restarted from an older snapshot holds its old run id under its tags; a promoted
replica holds the run id of the primary it replicated: both are recognized, and the epochs
of that node's tags (only) get fresh values, before the connection is used.

The cost of a false alarm (a restart that lost nothing, e.g. with `appendfsync always`): the
entries and pages of every entity are missed once and refilled from the database.
Not covered: a dataset replaced while the server process keeps its run id (`DEBUG RELOAD`,
`FLUSHALL`, or an identity key evicted: the latter two are recognized at the next new
connection, as the identity is then missing).
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AskError, ConnectionError

from app.cache import format

logger = logging.getLogger(__name__)

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
    """The check of each new connection (see the module docstring); `per_tag`: on a
    cluster, one identity per epoch tag."""

    def __init__(
        self,
        prefix: str,
        epoch_keys: Sequence[str],
        on_change: Callable[[str], None],
        *,
        per_tag: bool = False,
    ) -> None:
        self.key = format.identity_key(prefix)
        self.epoch_keys = list(epoch_keys)
        groups: dict[str, list[str]] = defaultdict(list)
        for epoch in self.epoch_keys:
            groups[format.identity_key(prefix, epoch) if per_tag else self.key].append(epoch)
        #: identity key -> the epoch keys it guards (one slot each on a cluster)
        self.groups = dict(groups)
        self.seen: dict[str, str] = {}  # identity key -> the identity this process last saw
        self.changes = 0  # times an identity seen differed from the one known
        #: Bench only (`bench/recovery.py` measures a new connection without the check):
        #: False serves reads from a dataset nobody recognized. Never turned off by the service.
        self.checking = True
        self._on_change = on_change

    @property
    def known(self) -> str | None:
        """The identity this process last saw (standalone, sentinel: the one key)."""
        return self.seen.get(self.key)

    async def on_connect(self, connection: AbstractConnection) -> None:
        """redis-py's `redis_connect_func`: the usual hand-shake, then the check."""
        await connection.on_connect()
        if not self.checking:
            return
        await connection.send_command("INFO", "server")
        run_id = run_id_of(await connection.read_response())
        token = secrets.token_hex(TOKEN_BYTES)
        commands: list[list[str | int]] = []
        for key, epochs in self.groups.items():
            fresh = [format.fresh_counter() for _ in epochs]
            commands.append(
                ["EVAL", IDENTIFY, 1 + len(epochs), key, *epochs, run_id, token, *fresh]
            )
        await connection.send_packed_command(connection.pack_commands(commands))
        identities: dict[str, str] = {}
        for key in self.groups:
            try:
                reply = await connection.read_response()
            except AskError:  # MOVED or ASK: a tag another node serves, checked there
                continue
            identities[key] = reply.decode() if isinstance(reply, bytes) else str(reply)
        self.recognized(identities)

    def recognized(self, identities: dict[str, str]) -> None:
        changed = {key: value for key, value in identities.items() if self.seen.get(key) != value}
        if not changed:
            return
        again = any(key in self.seen for key in changed)
        self.seen.update(changed)
        if again:
            self.changes += 1
            logger.warning("Redis dataset changed (another server or a restart): epochs moved")
        self._on_change(next(iter(changed.values())))
