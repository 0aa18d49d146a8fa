"""CacheService: the one place that talks to Redis.

redis.asyncio with hiredis and a bounded, blocking connection pool; short timeouts and no
retries, so a Redis problem costs a request tens of milliseconds, not seconds. Every
operation degrades instead of raising: a Redis error is logged, counted and answered as a
miss / no-op, and a circuit breaker stops calling Redis after repeated failures.

After an outage (the breaker opened) or a lost invalidation, the entities' key epochs move
before Redis is read again, so entries that missed an invalidation are never served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.cache import scripts
from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.keys import escape_glob
from app.cache.stats import CacheStats
from app.core.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Failed:
    """Sentinel: Redis was not used (disabled, breaker open) or failed."""

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Any = _Failed()
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
_VERSION = re.compile(rb'"version":(\d+)')


def redacted_url(url: str) -> str:
    """The Redis URL without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _fresh_counter() -> int:
    """Start value for a counter that does not exist (yet or any more): random, so that a
    lost counter never restarts at a value pages were already stored under."""
    return random.getrandbits(50) + 1


@dataclass(frozen=True, slots=True)
class EntryRead:
    epoch: bytes
    value: bytes | None  # the stored entry on a hit
    floor: int  # on a miss: version of a marker or stale entry (reads must not go below)
    lease: bool  # on a miss: this caller holds the load lease


@dataclass(frozen=True, slots=True)
class PageRead:
    key: bytes  # the page key, generations included
    value: bytes | None
    lease: bool


@dataclass(frozen=True, slots=True)
class Marker:
    key: str
    version: int
    ttl: int


class CacheService:
    def __init__(self, settings: Settings, entities: Sequence[str]) -> None:
        self.settings = settings
        self.enabled = settings.redis_enabled
        self.url = redacted_url(settings.redis_url)
        self._secrets = [
            secret
            for secret in (
                settings.redis_password and settings.redis_password.get_secret_value(),
                urlsplit(settings.redis_url).password,
            )
            if secret
        ]
        self.prefix = settings.cache_key_prefix
        self.stats = CacheStats(list(entities))
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_cooldown_seconds
        )
        self._operation_timeout = (
            settings.redis_pool_timeout
            + settings.redis_connect_timeout
            + settings.redis_socket_timeout * 2
        )
        self._epoch_keys = {entity: f"{self.prefix}epoch:{entity}" for entity in entities}
        self._family_keys = {entity: f"{self.prefix}gen:{entity}" for entity in entities}
        self._entity_wide = set(self._epoch_keys.values()) | set(self._family_keys.values())
        self._counter_ttl = 2 * max(
            settings.cache_default_ttl,
            settings.cache_hero_ttl,
            settings.cache_child_ttl,
            settings.cache_story_ttl,
        )
        self._stale_epochs: set[str] = set()
        self._bump_lock = asyncio.Lock()
        self._repair_task: asyncio.Task[None] | None = None
        self.epoch_listeners: list[Callable[[], None]] = []  # called when epochs move
        self.redis: Redis | None = None
        if self.enabled:
            self.redis = self._connect(settings)
            self._read_entry = self.redis.register_script(scripts.READ_ENTRY)
            self._fill_entry = self.redis.register_script(scripts.FILL_ENTRY)
            self._read_page = self.redis.register_script(scripts.READ_PAGE)
            self._fill_page = self.redis.register_script(scripts.FILL_PAGE)
            self._invalidate = self.redis.register_script(scripts.INVALIDATE)
            self._demote = self.redis.register_script(scripts.DEMOTE)
            self._delete_entries = self.redis.register_script(scripts.DELETE_ENTRIES)

    @staticmethod
    def _connect(settings: Settings) -> Redis:
        options: dict[str, Any] = {
            "max_connections": settings.redis_max_connections,
            "timeout": settings.redis_pool_timeout,
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
            "health_check_interval": 0,
            "client_name": "tales-api",
        }
        if settings.redis_password is not None:
            options["password"] = settings.redis_password.get_secret_value()
        url = settings.redis_url
        if settings.redis_db is not None:  # the URL's database would win over `db=`
            url = urlunsplit(urlsplit(url)._replace(path=f"/{settings.redis_db}"))
        pool = BlockingConnectionPool.from_url(url, **options)
        return Redis(connection_pool=pool)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> CacheService:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def warm_up(self) -> None:
        """Open the pool's connections at start-up, so that the first burst of requests does
        not pay (and time out on) connection set-up. Failures are ignored: the service also
        starts without Redis."""
        if self.redis is None:
            return
        pings = [self.redis.ping() for _ in range(self.settings.redis_max_connections)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._operation_timeout * 4):
                await asyncio.gather(*pings, return_exceptions=True)

    async def close(self) -> None:
        if self._repair_task is not None:
            self._repair_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repair_task
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()  # a pool passed in is not closed
            self.redis = None

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        return "up" if self.breaker.state is BreakerState.closed else "down"

    def breaker_state(self) -> str:
        return "disabled" if not self.enabled else self.breaker.state.value

    # -- the guard every operation goes through -------------------------------------------
    async def _guarded(self, entity: str | None, call: Callable[[], Awaitable[T]]) -> T:
        if self.redis is None or not self.breaker.allow():
            return FAILED
        probing = self.breaker.state is BreakerState.half_open
        try:
            async with asyncio.timeout(self._operation_timeout):
                if probing:
                    self._stale_epochs.update(self._epoch_keys)
                if self._stale_epochs:
                    await self._bump_stale_epochs()
                result = await call()
        except REDIS_ERRORS as exc:
            self._failed(entity, exc)
            return FAILED
        if self.breaker.record_success():
            logger.warning("cache reachable again; key epochs moved before reading")
        return result

    def _failed(self, entity: str | None, exc: BaseException) -> None:
        self.breaker.record_failure()
        if self._repair_task is None or self._repair_task.done():
            self._repair_task = asyncio.create_task(self._repair())
        if entity is not None:
            self.stats[entity].errors += 1
        else:
            self.stats.untagged_errors += 1
        logger.error("cache operation failed: %s: %s", type(exc).__name__, self._scrub(exc))

    def _scrub(self, exc: BaseException) -> str:
        message = str(exc)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    async def _repair(self) -> None:
        """After a failure, keep probing until Redis answers and the epochs have moved, so
        that the move happens as soon as Redis is back, not at this process's next request:
        other processes sharing the Redis stop seeing entries this one could not invalidate."""
        interval = min(self.breaker.cooldown_seconds, 0.25)
        while self.redis is not None and (
            self._stale_epochs or self.breaker.state is not BreakerState.closed
        ):
            await asyncio.sleep(interval)
            await self._guarded(None, self.redis.ping)

    async def _bump_stale_epochs(self) -> None:
        async with self._bump_lock:
            if not self._stale_epochs:
                return
            entities = sorted(self._stale_epochs)
            assert self.redis is not None
            await self._move_counters([], [self._epoch_keys[e] for e in entities])
            self._stale_epochs.difference_update(entities)
            self._epochs_moved()
            logger.info("cache key epochs moved for %s (lost invalidations)", ", ".join(entities))

    # -- generic operations ---------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        result = await self._guarded(None, lambda: self.redis.get(key))  # type: ignore[union-attr]
        return None if result is FAILED else result

    async def set(self, key: str, value: bytes | str, ttl: int | None = None) -> bool:
        ttl = ttl or self.settings.cache_default_ttl
        result = await self._guarded(None, lambda: self.redis.set(key, value, ex=ttl))  # type: ignore[union-attr]
        return result is not FAILED and bool(result)

    async def delete(self, *keys: str) -> int:
        result = await self._guarded(None, lambda: self.redis.delete(*keys))  # type: ignore[union-attr]
        return 0 if result is FAILED else int(result)

    async def exists(self, key: str) -> bool:
        result = await self._guarded(None, lambda: self.redis.exists(key))  # type: ignore[union-attr]
        return result is not FAILED and bool(result)

    async def get_ttl(self, key: str) -> int | None:
        """Seconds left; None when the key is absent, has no TTL or Redis is unavailable."""
        result = await self._guarded(None, lambda: self.redis.ttl(key))  # type: ignore[union-attr]
        return None if result is FAILED or result < 0 else int(result)

    async def delete_pattern(self, literal_prefix: str, *, entries_only: bool = False) -> int:
        """Delete the keys starting with `literal_prefix` (SCAN, never KEYS; glob characters
        in the literal are escaped). `entries_only` keeps post-write markers and counters."""
        pattern = escape_glob(literal_prefix) + "*"

        async def scan_and_delete() -> int:
            assert self.redis is not None
            deleted = 0
            batch: list[bytes] = []
            async for key in self.redis.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += await self._delete_batch(batch, entries_only)
                    batch = []
            if batch:
                deleted += await self._delete_batch(batch, entries_only)
            return deleted

        if self.redis is None or not self.breaker.allow():
            return 0
        try:
            result = await scan_and_delete()  # a long SCAN must not hit the operation timeout
        except REDIS_ERRORS as exc:
            self._failed(None, exc)
            return 0
        self.breaker.record_success()
        return result

    async def _delete_batch(self, keys: list[bytes], entries_only: bool) -> int:
        assert self.redis is not None
        if entries_only:
            return int(await self._delete_entries(keys=keys))
        return int(await self.redis.unlink(*keys))

    async def health_check(self) -> dict[str, Any]:
        """PING with the configured timeouts; does not move the circuit breaker."""
        if self.redis is None:
            return {"status": "disabled", "latency_ms": None, "breaker": self.breaker_state()}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._operation_timeout):
                await self.redis.ping()
        except REDIS_ERRORS:
            return {"status": "down", "latency_ms": None, "breaker": self.breaker_state()}
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"status": "up", "latency_ms": latency, "breaker": self.breaker_state()}

    # -- cache-aside operations used by CachedRepository ----------------------------------
    async def peek_entry(self, entity: str, key: str) -> EntryRead | None:
        """The hit path: one MGET of the entity's epoch and the entry, no script. An entry
        of another epoch, a marker or nothing is a miss (with the version floor it shows)."""
        result = await self._guarded(entity, lambda: self.redis.mget(self._epoch_keys[entity], key))  # type: ignore[union-attr]
        if result is FAILED:
            return None
        epoch, value = result
        if value is None:
            return EntryRead(epoch or b"", None, 0, False)
        if epoch is not None and value.startswith(b'{"state":"entry","epoch":%s,' % epoch):
            return EntryRead(epoch, value, 0, False)
        floor = _VERSION.search(value, 0, 64)
        return EntryRead(epoch or b"", None, int(floor[1]) if floor else 0, False)

    async def read_entry(
        self, entity: str, key: str, lease_key: str, lease_token: str
    ) -> EntryRead | None:
        """None when Redis was not used; `lease_token` '' asks for no lease."""
        result = await self._guarded(
            entity,
            lambda: self._read_entry(
                keys=[self._epoch_keys[entity], key, lease_key],
                args=[_fresh_counter(), lease_token, self.settings.cache_lease_ms],
            ),
        )
        if result is FAILED:
            return None
        if result[1] is not None:
            return EntryRead(result[0], result[1], 0, False)
        return EntryRead(result[0], None, int(result[2]), bool(result[3]))

    async def fill_entry(
        self,
        entity: str,
        key: str,
        lease_key: str,
        epoch: bytes,
        version: int,
        payload: bytes,
        ttl: int,
        lease_token: str,
    ) -> bool:
        result = await self._guarded(
            entity,
            lambda: self._fill_entry(
                keys=[self._epoch_keys[entity], key, lease_key],
                args=[epoch, version, payload, ttl, lease_token],
            ),
        )
        return result is not FAILED and bool(result)

    async def read_page(
        self, entity: str, base: str, scope_key: str, lease_key: str, lease_token: str
    ) -> PageRead | None:
        result = await self._guarded(
            entity,
            lambda: self._read_page(
                keys=[self._epoch_keys[entity], self._family_keys[entity], scope_key, lease_key],
                args=[
                    _fresh_counter(),
                    base,
                    lease_token,
                    self.settings.cache_lease_ms,
                    self._counter_ttl,
                ],
            ),
        )
        if result is FAILED:
            return None
        if result[1] is not None:
            return PageRead(result[0], result[1], False)
        return PageRead(result[0], None, bool(result[3]))

    async def fill_page(
        self, entity: str, key: bytes, lease_key: str, payload: bytes, ttl: int, lease_token: str
    ) -> bool:
        result = await self._guarded(
            entity,
            lambda: self._fill_page(keys=[key, lease_key], args=[payload, ttl, lease_token]),
        )
        return result is not FAILED

    async def invalidate(
        self, entity: str, markers: Sequence[Marker], counters: Iterable[str]
    ) -> bool:
        """Post-write markers and list generation moves, in one round trip.

        When it cannot be sent, the touched entities' epochs move before Redis is read
        again, so nothing this write made stale is ever served.
        """
        counters = sorted(set(counters))
        result = await self._guarded(entity, lambda: self._move_counters(markers, counters))
        if result is FAILED:
            self._stale_epochs.update(self._touched_entities(markers, counters))
            return False
        return True

    def _move_counters(self, markers: Sequence[Marker], counters: Iterable[str]) -> Awaitable[Any]:
        """One INVALIDATE call: write markers, move counters (entity-wide ones first)."""
        counters = sorted(set(counters), key=lambda key: key not in self._entity_wide)
        entity_wide = sum(1 for key in counters if key in self._entity_wide)
        args: list[object] = [len(markers), entity_wide, _fresh_counter(), self._counter_ttl]
        for marker in markers:
            state = "deleted" if marker.version == scripts.DELETED_VERSION else "written"
            args += [
                marker.version,
                f'{{"state":"{state}","version":{marker.version}}}',
                marker.ttl,
            ]
        return self._invalidate(keys=[*(m.key for m in markers), *counters], args=args)

    def _touched_entities(self, markers: Sequence[Marker], counters: Sequence[str]) -> set[str]:
        touched = set()
        for key in [m.key for m in markers] + list(counters):
            name = key.removeprefix(self.prefix).removeprefix("gen:").split(":", 1)[0]
            if name in self._epoch_keys:
                touched.add(name)
        return touched or set(self._epoch_keys)

    async def demote(self, entity: str, keys: Sequence[str], ttl: int) -> bool:
        result = await self._guarded(entity, lambda: self._demote(keys=list(keys), args=[ttl]))
        return result is not FAILED

    async def move_epoch(self, entities: Iterable[str]) -> bool:
        """Invalidate everything cached for these entities in one step."""
        keys = [self._epoch_keys[e] for e in entities]
        result = await self._guarded(None, lambda: self._move_counters([], keys))
        self._epochs_moved()
        return result is not FAILED

    def _epochs_moved(self) -> None:
        for listener in self.epoch_listeners:
            listener()
