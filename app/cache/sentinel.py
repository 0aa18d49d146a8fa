"""Redis behind Sentinel (`REDIS_MODE=sentinel`): clients of the current primary.

Each new connection asks the sentinels (`REDIS_SENTINELS`, in turn) for the address of the
primary named `REDIS_SENTINEL_MASTER`, then connects to it with the same options as a
standalone connection (short timeouts, no retries, TLS, credentials, the identity check).
After a failover, the connections to the old primary fail (it died) or are dropped (it
answers READONLY as a replica, or the sentinels name another address), and the next ones go
to the promoted replica: the cache client and the near cache's subscriber both follow.

`REDIS_URL` still gives what the data nodes need besides their address: its scheme
(`rediss://` for TLS, to the sentinels too), user name, password and database; its host
and port are not used. `REDIS_SENTINEL_PASSWORD` is the sentinels' own password.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from app.core.settings import Settings, sentinel_addresses

#: What the URL says about a node's address and transport: the sentinels decide the first,
#: `ssl` the second.
_ADDRESS_OPTIONS = ("host", "port", "path", "connection_class")
#: Options of the data-node connections that the sentinel connections share.
_SHARED_OPTIONS = (
    "socket_timeout",
    "socket_connect_timeout",
    "retry",
    "client_name",
    "ssl_ca_certs",
)


#: redis-py leaves Sentinel's constructor untyped.
_SENTINEL: Any = Sentinel


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The primary's connections in a bounded, blocking pool (as `connection.connect`'s):
    a burst waits up to `REDIS_POOL_TIMEOUT` for a connection instead of failing."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client is being closed: so are its sentinel clients
            await self.sentinel_manager.aclose()


class SubscriberSentinelPool(SentinelConnectionPool):
    """The near cache's subscriptions: a small pool that does not wait."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            await self.sentinel_manager.aclose()


def primary(settings: Settings, url: str, options: dict[str, Any], *, blocking: bool) -> Redis:
    """A client of the primary Sentinel names. `url`: REDIS_URL (scheme, credentials,
    database); `options`: the data-node connection options of `connection.py` (timeouts,
    pool bounds, credentials, TLS, connect hook)."""
    tls = url.startswith("rediss://")
    node: dict[str, Any] = {
        name: value for name, value in parse_url(url).items() if name not in _ADDRESS_OPTIONS
    }
    node.update(options)
    if tls:
        node["ssl"] = True  # the pool picks the TLS connection class
    sentinel_options: dict[str, Any] = {
        name: node[name] for name in _SHARED_OPTIONS if name in node
    }
    if node.get("socket_timeout") is None:  # the subscriber's: sentinels still answer fast
        sentinel_options["socket_timeout"] = settings.redis_socket_timeout
    if tls:
        sentinel_options["ssl"] = True
    if settings.redis_sentinel_password is not None:
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    manager = _SENTINEL(
        sentinel_addresses(settings.redis_sentinels), sentinel_kwargs=sentinel_options
    )
    pool_class = BlockingSentinelPool if blocking else SubscriberSentinelPool
    client: Redis = manager.master_for(
        settings.redis_sentinel_master, connection_pool_class=pool_class, **node
    )
    return client
