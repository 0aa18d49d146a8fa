"""Redis Cluster (`REDIS_MODE=cluster`): the client, and the operations whose keys span slots.

`REDIS_URL` names any node; the client discovers the others (CLUSTER SLOTS) and follows MOVED
and ASK. The philosophy of `connection.py` holds: short timeouts and no retry within a
request. A connection error or a timeout marks the slot map stale, so the next operation
(the guard's repair probe, or the next request) asks the cluster again: after a primary dies
the service follows its promoted replica without a restart. redis-py's cluster pools do not
wait for a free connection (they raise), so a semaphore bounds the commands in flight to
`REDIS_MAX_CONNECTIONS` and waits `REDIS_POOL_TIMEOUT` for a turn, as the standalone pool does.

Every script reads and writes keys of one slot only, by design of the key names
(`format.py`: hash tags). What touches several slots is split here: an invalidation or a
demotion runs its script once per slot (concurrently), then once more in the slot of the near
cache's members key, where it publishes the change; the admin flush scans every primary and
deletes per slot. The near cache subscribes on the node that owns that slot, which is also
where every heartbeat and invalidation is published, so its messages arrive in the order
they were published (`near/bus.py` relies on it), as with a standalone Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException

DEFAULT_PORT = 6379
#: `connection.py`'s options passed to the cluster client as they are, when set: the
#: password, the CA of `rediss://` (without it TLS verifies against the system's CAs), and
#: maintenance notifications off (no hand-shake round trip for a protocol nodes don't speak).
FORWARDED_OPTIONS = ("password", "ssl_ca_certs", "maint_notifications_config")

T = TypeVar("T")
#: One script call on keys of one slot: (markers or keys of that slot, counters of that slot,
#: near publication or None).
SlotCall = Callable[[list[T], list[str], Any], Awaitable[Any]]
#: The keys and arguments of one script call on keys of one slot.
ScriptCall = tuple[list[str], list[Any]]


class BoundedRedisCluster(RedisCluster):
    """RedisCluster with at most `bound` commands in flight, each waiting at most `wait`
    seconds for its turn (redis-py's cluster pools raise instead of waiting).

    redis-py raises `RedisClusterException`, which is not a `RedisError`, when no node
    answers while the slot map is read (e.g. during a failover on a slow machine); it is
    raised as a `ConnectionError` here, so that the guard treats it as any Redis failure
    (fail-open, breaker) instead of letting it reach a request or end the repair task. So
    is the AttributeError redis-py raises when a failure elsewhere closed (`aclose`, or
    `disconnect_free_connections`) the connection a command was being written to (seen
    under load during a failover: `'NoneType' object has no attribute 'writelines'`)."""

    def __init__(
        self,
        *,
        bound: int,
        wait: float,
        on_connect: Callable[[Connection], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._turns = asyncio.Semaphore(bound)
        self._wait = wait
        if on_connect is not None:  # RedisCluster takes no `redis_connect_func`: set it where
            # every node's connections are made (the startup nodes copied theirs already)
            nodes = self.nodes_manager
            nodes.connection_kwargs["redis_connect_func"] = on_connect
            for node in nodes.startup_nodes.values():
                node.connection_kwargs["redis_connect_func"] = on_connect

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn():
            try:
                return await super().execute_command(*args, **kwargs)
            except RedisClusterException as exc:
                raise RedisConnectionError(f"cluster unavailable: {exc}") from exc
            except AttributeError as exc:  # redis-py: a connection closed under a command
                raise RedisConnectionError(f"connection closed during the command: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """One turn of the connection bound, waited for at most `wait` seconds."""
        try:
            async with asyncio.timeout(self._wait):
                await self._turns.acquire()
        except TimeoutError as exc:
            raise RedisConnectionError("no free Redis connection in time") from exc
        try:
            yield
        finally:
            self._turns.release()

    async def script_per_node(self, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any]:
        """`script` once per call (each call's keys in one slot), sent as one pipeline per
        node that owns some of their slots: one round trip per node, however many slots. It
        takes one turn of the bound (it holds at most one connection per node). A node that
        does not know the script (e.g. a replica promoted since it was loaded) runs it from
        its source, in one more round trip. Answers in the order of `calls`; a failed call's
        answer is its exception."""
        async with self._turn():
            try:
                answers = await self._pipelined("EVALSHA", script.sha, calls)
                missing = [i for i, a in enumerate(answers) if isinstance(a, NoScriptError)]
                if missing:
                    again = await self._pipelined(
                        "EVAL", script.script, [calls[i] for i in missing]
                    )
                    for i, answer in zip(missing, again, strict=True):
                        answers[i] = answer
                return answers
            except (RedisClusterException, AttributeError) as exc:  # as in `execute_command`
                self._initialize = True  # the slot map is read again before the next command
                raise RedisConnectionError(f"cluster pipeline failed: {exc}") from exc
            except BaseException:
                self._initialize = True  # a node that failed may have lost its slots
                raise

    async def _pipelined(self, command: str, script: Any, calls: Sequence[ScriptCall]) -> list[Any]:
        pipe = self.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command(command, script, len(keys), *keys, *args)
        answers = list(await pipe.execute(raise_on_error=False))
        if any(isinstance(a, (RedisConnectionError, TimeoutError)) for a in answers):
            self._initialize = True
        return answers


def connect(url: str, options: dict[str, Any]) -> BoundedRedisCluster:
    """The cluster client, from `connection.py`'s standalone options."""
    kwargs = _url_arguments(url)
    kwargs.update(
        bound=options["max_connections"],
        wait=options["timeout"],
        max_connections=options["max_connections"],  # per node
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
        retry=Retry(NoBackoff(), 0),  # no retry within a request; the map refreshes next time
        health_check_interval=0,
        client_name=options["client_name"],
        require_full_coverage=False,  # a slot without a primary fails alone, not every command
    )
    for passed in FORWARDED_OPTIONS:
        if passed in options:
            kwargs[passed] = options[passed]
    kwargs["on_connect"] = options.get("redis_connect_func")
    return BoundedRedisCluster(**kwargs)


def _url_arguments(url: str) -> dict[str, Any]:
    """host, port, credentials and TLS of `REDIS_URL` (its database is 0: settings)."""
    parts = urlsplit(url)
    arguments: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or DEFAULT_PORT,
    }
    if parts.username:
        arguments["username"] = unquote(parts.username)
    if parts.password:
        arguments["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        arguments["ssl"] = True
    return arguments


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def slot_map_outdated(client: RedisCluster) -> None:
    """`client` reads the slot map again (CLUSTER SLOTS) before its next command: on evidence
    of a topology change that none of its commands failed on (e.g. a node it takes for a
    primary answers ROLE as a replica: `key_scan.py`). The flag is the one redis-py itself
    sets after a failed command; it has no public method for this."""
    client._initialize = True


def slot_of(key: str) -> int:
    return int(key_slot(key.encode()))


def by_slot(keys: Iterable[str]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for key in keys:
        groups[slot_of(key)].append(key)
    return groups


async def per_slot(
    call: SlotCall[T],
    items: Sequence[T],
    key_of: Callable[[T], str],
    counters: Iterable[str],
    near: Any,
) -> Any:
    """Run `call` once per slot of the items and counters (concurrently), then once with no
    keys but the near publication, in its own slot, after all of them: so a near cache drops
    its copies only once Redis no longer serves them. The publication is sent even if a slot
    failed (its keys then answer errors, and near copies must go); the first failure is
    raised after it, and the caller treats the change as lost."""
    groups: dict[int, tuple[list[T], list[str]]] = defaultdict(lambda: ([], []))
    for item in items:
        groups[slot_of(key_of(item))][0].append(item)
    for counter in counters:
        groups[slot_of(counter)][1].append(counter)
    results = await asyncio.gather(
        *(call(mine, theirs, None) for mine, theirs in groups.values()), return_exceptions=True
    )
    answer = await call([], [], near) if near is not None else []
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return answer


async def per_node(
    client: BoundedRedisCluster,
    script: AsyncScript,
    build: Callable[[list[str], Any], ScriptCall],
    counters: Iterable[str],
    near: Any,
) -> Any:
    """`per_slot` for calls on counters only (an epoch move: 17 slots per entity), pipelined:
    the calls of all slots go as one pipeline per node (`script_per_node`), then the near
    publication, in its own slot, after all of them, as `per_slot` does. `build(counters,
    near)` is one call's keys and arguments."""
    calls = [build(keys, None) for keys in by_slot(counters).values()]
    answers = await client.script_per_node(script, calls) if calls else []
    answer = await script(*build([], near)) if near is not None else []
    for result in answers:
        if isinstance(result, BaseException):
            raise result
    return answer


# -- the near cache's subscription ---------------------------------------------------------
Locate = Callable[[], Awaitable[tuple[str, int]]]


class SlotOwnerConnection(Connection):
    """A connection that, each time it connects, goes to the node owning one key's slot now
    (`locate`), so that a subscription follows a failover."""

    def __init__(self, *, locate: Locate, **kwargs: Any) -> None:
        self._locate = locate
        super().__init__(**kwargs)

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self.is_connected:
            self.host, self.port = await self._locate()
        await super().connect_check_health(check_health, retry_socket_connect)


class SlotOwnerSSLConnection(SlotOwnerConnection, SSLConnection):
    pass


def owner_locator(client: RedisCluster, key: str) -> Locate:
    """Where `key`'s slot is served now: a keyed command through the cluster client first,
    so that a stale slot map is refreshed (MOVED, or a dead node) before it is read."""

    async def locate() -> tuple[str, int]:
        await client.exists(key)
        node = client.get_node_from_key(key)
        if node is None:
            raise RedisConnectionError("no node serves the near cache's slot")
        return node.host, int(node.port)

    return locate


def subscriber(url: str, options: dict[str, Any], locate: Locate) -> Redis:
    """A standalone client whose connections go to the node `locate` names at connect time."""
    kwargs = _url_arguments(url)
    ssl = kwargs.pop("ssl", False)
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    kwargs.update(options)
    kwargs.update(
        connection_class=SlotOwnerSSLConnection if ssl else SlotOwnerConnection, locate=locate
    )
    return Redis(connection_pool=ConnectionPool(**kwargs))
