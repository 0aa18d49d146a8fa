"""CacheService: the cache-aside operations on Redis, each one round trip, each guarded.

Reads and fills of entries and pages, invalidation after a write, manual demotion, epoch
moves and the admin flush. Every operation goes through `RedisGuard.run` (fail-open,
deadline, breaker, epoch moves owed) and answers a miss or a no-op when Redis is unusable.
Values and keys come from `format.py`; the scripts from `scripts.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from app.cache import cluster, format, scripts
from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.connection import (
    close,
    connect,
    operation_timeout,
    redacted_url,
    secrets_of,
    subscriber,
)
from app.cache.guard import FAILED, REDIS_ERRORS, RedisGuard, Replay
from app.cache.identity import DatasetIdentity
from app.cache.keys import KeyEncoder, escape_glob
from app.cache.near.bus import InvalidationBus
from app.cache.near.publisher import NearArgs, NearPublisher
from app.cache.near.store import NearStore
from app.cache.stats import CacheStats
from app.core.registry import Registry
from app.core.settings import Settings

ScriptArg = bytes | str | int | float

#: SCAN batch of the admin flush.
SCAN_BATCH = 500
#: The start-up connection warm-up may take this many operation deadlines.
WARM_UP_DEADLINES = 4
#: Random bytes of a generated key salt (BLAKE2b takes keys of up to 64 bytes).
KEY_SALT_BYTES = 32


@dataclass(frozen=True, slots=True)
class Read:
    """What Redis holds for one entry or page, as a read found it."""

    at: bytes  # where a fill lands: the epoch (entries) or the stamp (pages)
    value: bytes | None  # the stored entry of the current epoch / generations; None: a miss
    floor: int = 0  # on a miss: version of a marker or stale entry (loads must not go below)
    lease: bool = False  # on a miss: this caller holds the load lease

    @property
    def deleted(self) -> bool:
        return self.floor == format.DELETED_VERSION


@dataclass(frozen=True, slots=True)
class Marker:
    key: str
    version: int
    ttl: int


class CacheService:
    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.enabled = settings.redis_enabled
        self.url = redacted_url(settings.redis_url)
        self.prefix = settings.cache_key_prefix
        self.stats = CacheStats(registry.names)
        self.encoder = KeyEncoder(settings.cache_key_salt.get_secret_value().encode())
        self.keys = {
            spec.name: format.EntityKeys(spec, self.prefix, self.encoder) for spec in registry
        }
        self.ttls = {spec.name: settings.ttl(spec) for spec in registry}
        self._counter_ttl = format.COUNTER_TTL_FACTOR * max(self.ttls.values())
        self._entity_wide = {e for k in self.keys.values() for e in k.epochs} | {
            k.family for k in self.keys.values()
        }
        self.cluster = settings.redis_mode == "cluster"  # scripts over several slots split
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_cooldown_seconds
        )
        epoch_keys = [epoch for keys in self.keys.values() for epoch in keys.epochs]
        self.identity = DatasetIdentity(
            self.prefix, epoch_keys, self.redis_identity_changed, per_tag=self.cluster
        )
        check = self.identity.on_connect
        redis = connect(settings, on_connect=check) if self.enabled else None
        self.guard = RedisGuard(
            redis,
            timeout=operation_timeout(settings),
            breaker=self.breaker,
            stats=self.stats,
            epoch_keys={name: keys.epochs for name, keys in self.keys.items()},
            move_epochs=self._move_epochs,
            secrets=secrets_of(settings),
        )
        if redis is not None:
            self._read_entry = redis.register_script(scripts.READ_ENTRY)
            self._fill_entry = redis.register_script(scripts.FILL_ENTRY)
            self._read_page = redis.register_script(scripts.READ_PAGE)
            self._fill_page = redis.register_script(scripts.FILL_PAGE)
            self._invalidate_script = redis.register_script(scripts.INVALIDATE)
            self._demote = redis.register_script(scripts.DEMOTE)
            self._delete_entries = redis.register_script(scripts.DELETE_ENTRIES)
            self._heartbeat = redis.register_script(scripts.HEARTBEAT)
            self._release_lease = redis.register_script(scripts.RELEASE_LEASE)
            self._key_salt = redis.register_script(scripts.KEY_SALT)
        self.near: InvalidationBus | None = None
        self._subscriber: Redis | None = None
        if redis is not None and settings.cache_near_enabled:
            listening = self._subscriber = subscriber(settings, redis)
            self.near = InvalidationBus(
                store=NearStore(settings.cache_near_max_bytes),
                prefix=self.prefix,
                lease_seconds=settings.cache_near_lease_ms / 1000,
                subscriber=lambda: listening,
                redis=self,
            )
        self.publisher = NearPublisher(self.guard, self.near)
        self._salt_check: asyncio.Task[None] | None = None

    @property
    def redis(self) -> Redis | None:
        return self.guard.redis

    def redis_identity_changed(self, identity: str) -> None:
        """A new connection reached another dataset than the last one (`identity.py`): its
        epochs have just moved in Redis; what this process took from the older dataset (its
        single flights, its near copies) goes before the connection is used."""
        del identity  # only its change matters here
        self.guard.epochs_moved()
        if self.near is not None:
            self.near.applied_here([key.encode() for key in self.identity.epoch_keys])

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
            async with asyncio.timeout(self.guard.timeout * WARM_UP_DEADLINES):
                await asyncio.gather(*pings, return_exceptions=True)
        await self.load_key_salt()
        if self.near is not None:
            self.near.start()

    async def close(self) -> None:
        if self._salt_check is not None:
            self._salt_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._salt_check
        if self.near is not None:
            await self.near.stop()
        redis = self.redis
        await self.guard.close()
        for client in (redis, self._subscriber):
            if client is not None:
                await close(client)

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        return "up" if self.breaker.state is BreakerState.closed else "down"

    def breaker_state(self) -> str:
        return "disabled" if not self.enabled else self.breaker.state.value

    async def health_check(self) -> dict[str, Any]:
        """PING with the configured timeouts; does not move the circuit breaker."""
        if self.redis is None:
            return {"status": "disabled", "latency_ms": None, "breaker": self.breaker_state()}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.guard.timeout):
                await self.redis.ping()
        except REDIS_ERRORS:
            return {"status": "down", "latency_ms": None, "breaker": self.breaker_state()}
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"status": "up", "latency_ms": latency, "breaker": self.breaker_state()}

    # -- the key salt ----------------------------------------------------------------------
    @property
    def keys_ready(self) -> bool:
        """Can personal values be named in keys (is the salt known)?"""
        return self.encoder.ready

    async def load_key_salt(self) -> bool:
        """Without `CACHE_KEY_SALT`: read the salt every process shares from Redis, the first
        process generating it (`scripts.KEY_SALT`). False while Redis cannot tell."""
        if self.encoder.ready:
            return True
        salt = await self._shared_salt(secrets.token_hex(KEY_SALT_BYTES).encode())
        if salt is None:
            return False
        self.encoder.use_salt(salt)
        self.guard.epoch_listeners.append(self._check_key_salt)
        return True

    async def _shared_salt(self, offered: bytes) -> bytes | None:
        keys, args = [format.key_salt(self.prefix)], [offered]
        result = await self.guard.run(None, lambda _: self._key_salt(keys=keys, args=args))
        return None if result is FAILED or not result else bytes(result)

    def _check_key_salt(self) -> None:
        """After an epoch move (an outage, a Redis that lost data): a generated salt may be
        gone from Redis. Offer ours again; if another process's salt is there instead, take
        it, and move the epochs (what this process invalidated meanwhile named other keys)."""
        if self._salt_check is None or self._salt_check.done():
            self._salt_check = asyncio.create_task(self._recheck_key_salt())

    async def _recheck_key_salt(self) -> None:
        ours = self.encoder.salt
        salt = await self._shared_salt(ours)
        if salt is not None and salt != ours:
            self.encoder.use_salt(salt)
            self.guard.lost_invalidation(self.keys)

    # -- reads and fills -------------------------------------------------------------------
    async def peek_entry(self, entity: str, key: str) -> Read | None:
        """The hit path: one MGET of the entity's epoch and the entry, no script. An entry
        of another epoch, a marker or nothing is a miss (with the version floor it shows).
        None when Redis was not used."""
        epoch_key = self.keys[entity].epoch_of(key)
        result = await self.guard.run(entity, lambda redis: redis.mget(epoch_key, key))
        if result is FAILED:
            return None
        epoch, value = cast("list[bytes | None]", result)  # decode_responses is off
        if value is None:
            return Read(epoch or b"", None)
        if epoch is not None and value.startswith(format.entry_head(epoch)):
            return Read(epoch, value)
        return Read(epoch or b"", None, format.version_of(value))

    async def read_entry(
        self, entity: str, key: str, lease_key: str, lease_token: str
    ) -> Read | None:
        """The miss path: the entry and, unless `lease_token` is '', the load lease."""
        keys = [self.keys[entity].epoch_of(key), key, lease_key]
        args: list[ScriptArg] = [format.fresh_counter(), lease_token, self.settings.cache_lease_ms]
        result = await self.guard.run(entity, lambda _: self._read_entry(keys=keys, args=args))
        if result is FAILED:
            return None
        if result[1] is not None:
            return Read(result[0], result[1])
        return Read(result[0], None, int(result[2]), bool(result[3]))

    async def fill_entry(
        self,
        entity: str,
        key: str,
        lease_key: str,
        read: Read,
        version: int,
        payload: bytes,
        lease_token: str,
    ) -> bool:
        keys = [self.keys[entity].epoch_of(key), key, lease_key]
        args: list[ScriptArg] = [read.at, version, payload, self.ttls[entity], lease_token]
        result = await self.guard.run(entity, lambda _: self._fill_entry(keys=keys, args=args))
        return result is not FAILED and bool(result)

    async def take_lease(self, entity: str, lease_key: str, lease_token: str) -> bool:
        """The load lease alone (an early refresh of an entry still served)."""
        lease_ms = self.settings.cache_lease_ms
        result = await self.guard.run(
            entity, lambda redis: redis.set(lease_key, lease_token, nx=True, px=lease_ms)
        )
        return result is not FAILED and bool(result)

    async def release_lease(self, entity: str, lease_key: str, lease_token: str) -> None:
        """Give back a lease this caller will not fill under (if it still holds it)."""
        keys, args = [lease_key], [lease_token]
        await self.guard.run(entity, lambda _: self._release_lease(keys=keys, args=args))

    async def peek_page(self, entity: str, base: str, scope_key: str) -> Read | None:
        """The hit path of pages: one MGET of the three counters a page depends on and the
        page, no script; the page is served only if its stamp names those counters."""
        keys = self.keys[entity]
        result = await self.guard.run(
            entity, lambda redis: redis.mget(keys.pages_epoch, keys.family, scope_key, base)
        )
        if result is FAILED:
            return None
        epoch, family, scope, value = cast("list[bytes | None]", result)
        if epoch is None or family is None or scope is None:
            return Read(b"", None)  # a counter to create: the miss path's script does
        stamp = format.page_stamp(epoch, family, scope)
        if value is not None and value.startswith(format.entry_head(stamp)):
            return Read(stamp, value)
        return Read(stamp, None)

    def _page_keys(self, entity: str, base: str, scope_key: str, lease_key: str) -> list[str]:
        keys = self.keys[entity]
        return [keys.pages_epoch, keys.family, scope_key, base, lease_key]

    async def read_page(
        self, entity: str, base: str, scope_key: str, lease_key: str, lease_token: str
    ) -> Read | None:
        """The miss path of pages: counters created if missing, and the load lease."""
        keys = self._page_keys(entity, base, scope_key, lease_key)
        args: list[ScriptArg] = [
            format.fresh_counter(),
            lease_token,
            self.settings.cache_lease_ms,
            self._counter_ttl,
        ]
        result = await self.guard.run(entity, lambda _: self._read_page(keys=keys, args=args))
        if result is FAILED:
            return None
        if result[1] is not None:
            return Read(result[0], result[1])
        return Read(result[0], None, 0, bool(result[3]))

    async def fill_page(
        self,
        entity: str,
        base: str,
        scope_key: str,
        lease_key: str,
        read: Read,
        payload: bytes,
        lease_token: str,
    ) -> bool:
        """Store a page loaded under `read.at` (its stamp), unless the counters moved."""
        keys = self._page_keys(entity, base, scope_key, lease_key)
        args: list[ScriptArg] = [read.at, payload, self.ttls[entity], lease_token]
        result = await self.guard.run(entity, lambda _: self._fill_page(keys=keys, args=args))
        return result is not FAILED and bool(result)

    # -- invalidation ----------------------------------------------------------------------
    async def invalidate(
        self,
        entity: str,
        markers: Sequence[Marker],
        counters: Iterable[str],
        touched: Iterable[str],
    ) -> bool:
        """Post-write markers and list generation moves, in one round trip (and, with near
        caches, their confirmation).

        When it cannot be sent (or its answer did not come), it is owed: sent again before
        this process reads Redis again (`RedisGuard.owe`), so nothing this write made stale
        is served here; its outbox row makes every other process apply it too.
        """
        ordered = sorted(set(counters))
        keys = [*(m.key for m in markers), *ordered]
        sent = await self.publisher.run(
            entity, keys, lambda redis, near: self._invalidate(redis, markers, ordered, near)
        )
        if not sent:
            self.guard.owe(self._resend(markers, ordered, keys), touched)
        return sent

    def lease_of(self, key: str) -> str:
        """The lease key of an entry key, whatever its entity."""
        for keys in self.keys.values():
            if key.startswith(keys.namespace):
                return keys.lease(key)
        raise KeyError(key)

    def _resend(self, markers: Sequence[Marker], counters: list[str], keys: list[str]) -> Replay:
        """The invalidation sent again: published to near caches, waited for by nobody (they
        hear it, or stop serving within their lease)."""
        return lambda redis: self._invalidate(redis, markers, counters, self.publisher.args(keys))

    async def repair(self, entity: str, markers: Sequence[Marker], counters: Iterable[str]) -> bool:
        """Send a write's invalidation again for the outbox repairer (one round trip); False:
        not sent (the row stays)."""
        ordered = sorted(set(counters))
        resend = self._resend(markers, ordered, [*(m.key for m in markers), *ordered])
        return await self.guard.run(entity, resend) is not FAILED

    async def resend(
        self, redis: Redis, markers: Sequence[Marker], counters: Iterable[str]
    ) -> None:
        """Send a write's invalidation again over `redis`, within the operation deadline,
        outside the guard (the half-open probe's recovery, `RedisGuard.recover`): a Redis
        error propagates."""
        ordered = sorted(set(counters))
        resend = self._resend(markers, ordered, [*(m.key for m in markers), *ordered])
        async with asyncio.timeout(self.guard.timeout):
            await resend(redis)

    @property
    def healthy(self) -> bool:
        """Redis answered the last call and this process owes nothing: it may repair others'."""
        return self.breaker.state is BreakerState.closed and not (
            self.breaker.failures or self.guard.owed
        )

    def _invalidate(
        self,
        _redis: Redis,
        markers: Sequence[Marker],
        counters: Iterable[str],
        near: NearArgs | None = None,
    ) -> Awaitable[Any]:
        """One INVALIDATE call: write markers and delete their entries' leases, move counters
        (entity-wide ones first). On a cluster, one per slot, then the near publication
        (`cluster.per_slot`)."""
        if self.cluster:
            return cluster.per_slot(self._invalidate_slot, markers, lambda m: m.key, counters, near)
        return self._invalidate_slot(markers, counters, near)

    def _invalidate_slot(
        self, markers: Sequence[Marker], counters: Iterable[str], near: NearArgs | None
    ) -> Awaitable[Any]:
        keys, args = self._invalidate_call(markers, counters, near)
        return self._invalidate_script(keys=keys, args=args)

    def _invalidate_call(
        self, markers: Sequence[Marker], counters: Iterable[str], near: NearArgs | None
    ) -> tuple[list[str], list[ScriptArg]]:
        """The keys and arguments of one INVALIDATE call."""
        ordered = sorted(set(counters), key=lambda key: key not in self._entity_wide)
        entity_wide = sum(1 for key in ordered if key in self._entity_wide)
        channel, message, members = near or (b"", b"", None)
        args: list[ScriptArg] = [
            len(markers),
            entity_wide,
            format.fresh_counter(),
            self._counter_ttl,
            channel,
            message,
        ]
        for marker in markers:
            args += [marker.version, format.marker(marker.version), marker.ttl]
        leases = [self.lease_of(m.key) for m in markers]
        keys = [*(m.key for m in markers), *leases, *ordered, *([members] if members else [])]
        return keys, args

    def _move_epochs(self, redis: Redis, epochs: list[str]) -> Awaitable[Any]:
        """The guard's epoch move after an outage: published, not waited for."""
        return self._move_counters(redis, epochs, self.publisher.args(epochs))

    def _move_counters(
        self, redis: Redis, epochs: list[str], near: NearArgs | None
    ) -> Awaitable[Any]:
        """An epoch move: INVALIDATE on counters only. On a cluster its calls (one per slot,
        `ENTRY_TAGS + 1` per entity) go as one pipeline per node, so that it fits the
        operation deadline even under load (the half-open probe makes it)."""
        if self.cluster:
            return cluster.per_node(
                cast("cluster.BoundedRedisCluster", redis),
                self._invalidate_script,
                lambda counters, publication: self._invalidate_call([], counters, publication),
                epochs,
                near,
            )
        return self._invalidate(redis, [], epochs, near)

    def data_lost(self) -> None:
        """Redis is known to have lost writes (e.g. its identity changed: restarted from an
        older snapshot, failed over to a lagging replica): near copies go now, and every
        entity's epoch moves before Redis is read again. The one epoch move on evidence of a
        loss; its cost (the whole cache cold) is measured by `python -m bench.outbox`."""
        if self.near is not None:
            self.near.drop_all()
        self.guard.data_lost()

    async def demote(self, entity: str, keys: Sequence[str]) -> bool:
        """Stop serving these entries; their versions stay as the floor for fills."""
        ttl = self.ttls[entity]

        def one(entries: Sequence[str], _: object, near: NearArgs | None) -> Awaitable[Any]:
            channel, message, members = near or (b"", b"", None)
            leases = [self.lease_of(key) for key in entries]
            all_keys = [*entries, *leases, *([members] if members else [])]
            return self._demote(keys=all_keys, args=[ttl, channel, message])

        def script(_redis: Redis, near: NearArgs | None) -> Awaitable[Any]:
            if self.cluster:
                return cluster.per_slot(one, keys, lambda key: key, (), near)
            return one(keys, None, near)

        return await self.publisher.run(entity, list(keys), script)

    async def move_epoch(self, entities: Iterable[str]) -> bool:
        """Invalidate everything cached for these entities in one step."""
        epochs = [key for e in entities for key in self.keys[e].epochs]
        moved = await self.publisher.run(
            None, epochs, lambda redis, near: self._move_counters(redis, epochs, near)
        )
        self.guard.epochs_moved()
        return moved

    # -- near caches -----------------------------------------------------------------------
    async def near_heartbeat(self, bus: InvalidationBus, sequence: int) -> bool:
        keys = [bus.channels.members]
        args: list[ScriptArg] = [bus.member, bus.lease_ms, bus.channels.heartbeat, sequence]
        result = await self.guard.run(None, lambda _: self._heartbeat(keys=keys, args=args))
        return result is not FAILED

    async def near_ack(self, bus: InvalidationBus, writer: str, invalidation: str) -> None:
        channel = format.NearChannels.ack_of(self.prefix, writer)
        payload = f"{invalidation} {bus.member}"
        await self.guard.run(None, lambda redis: redis.publish(channel, payload))

    async def near_leave(self, bus: InvalidationBus) -> None:
        members = bus.channels.members
        await self.guard.run(None, lambda redis: redis.zrem(members, bus.member))

    async def delete_entries(self, entity: str) -> int:
        """Delete the entity's cached entries and pages (SCAN, never KEYS), keeping its
        post-write markers and counters. A long SCAN is not bound by the operation deadline."""
        redis = self.redis
        if redis is None or not self.breaker.allow():
            return 0
        pattern = escape_glob(self.keys[entity].namespace) + "*"
        deleted = 0
        try:
            batch: list[bytes] = []
            async for key in redis.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    deleted += await self._delete_batch(batch)
                    batch = []
            if batch:
                deleted += await self._delete_batch(batch)
        except REDIS_ERRORS as exc:
            self.guard.failed(None, exc)
            return deleted
        self.breaker.record_success()
        return deleted

    async def _delete_batch(self, keys: list[bytes]) -> int:
        """One DELETE_ENTRIES call; on a cluster one per slot."""
        if not self.cluster:
            return int(await self._delete_entries(keys=keys))
        groups = cluster.by_slot(key.decode() for key in keys)
        counts = await asyncio.gather(*(self._delete_entries(keys=g) for g in groups.values()))
        return sum(int(count) for count in counts)
