"""The Redis connection: redis.asyncio with hiredis and a bounded, blocking pool.

Short timeouts and no retries (redis-py's defaults are 5 s timeouts and retries with
backoff), so a Redis problem costs a request tens of milliseconds, not seconds.
`rediss://` turns TLS on (`REDIS_TLS_CA_FILE`: the CA to verify the server with); with
`REDIS_MODE=sentinel` the clients follow the primary the sentinels name (`sentinel.py`).

redis-py's maintenance notifications (a Redis Enterprise/Cloud push protocol) are off: the
servers this service runs on do not send them, and with redis-py 8.1's default (`"auto"`)
a pooled connection that the server closed while it sat idle (a restart, `CLIENT KILL`, an
idle timeout) passes the pool's checkout probe and fails the first command sent on it
(redis/redis-py#4252; 8.0.1 and the pending fix replace it). Off, the probe replaces it.

`REDIS_MODE=cluster` gets a RedisCluster client (`cluster.py`), typed here as `Redis`: the
service calls on it only what both share (single-slot MGET and scripts, PING, PUBLISH,
ZREM); what differs (scripts over several slots, SCAN, the subscription, closing) goes
through `cluster.py`, chosen where the mode matters.
"""

from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from app.cache import cluster, format, sentinel
from app.core.settings import Settings

CLIENT_NAME = "tales-api"


#: Connections of the near cache's subscriber client: its subscription, and the one that
#: replaces it while the old one closes.
SUBSCRIBER_CONNECTIONS = 4


#: Runs on each new connection in place of redis-py's hand-shake (`identity.py`).
ConnectHook = Callable[[AbstractConnection], Awaitable[None]]


def connect(settings: Settings, on_connect: ConnectHook | None = None) -> Redis:
    """The client of every cache operation; `on_connect` checks each new connection."""
    options = _options(settings)
    if on_connect is not None:
        options["redis_connect_func"] = on_connect
    if settings.redis_mode == "sentinel":
        return sentinel.primary(settings, _url(settings), options, blocking=True)
    if settings.redis_mode == "cluster":
        return cast("Redis", cluster.connect(_url(settings), options))
    pool = BlockingConnectionPool.from_url(_url(settings), **options)
    return Redis(connection_pool=pool)


def subscriber(settings: Settings, client: Redis) -> Redis:
    """The near cache's subscription client: it waits for messages without a read timeout
    (silence is detected by the heartbeats, see `near/bus.py`). On a cluster it connects to
    the node that owns the near cache's slot, found through `client`."""
    options = _options(settings)
    options.update(
        max_connections=SUBSCRIBER_CONNECTIONS, socket_timeout=None, socket_keepalive=True
    )
    options.pop("timeout")
    if settings.redis_mode == "sentinel":
        return sentinel.primary(settings, _url(settings), options, blocking=False)
    if settings.redis_mode == "cluster":
        members = format.NearChannels.of(settings.cache_key_prefix, "").members
        locate = cluster.owner_locator(cast("RedisCluster", client), members)
        return cluster.subscriber(_url(settings), options, locate)
    pool = ConnectionPool.from_url(_url(settings), **options)
    return Redis(connection_pool=pool)


async def close(client: Redis) -> None:
    await client.aclose()
    if not cluster.is_cluster(client):  # a cluster client closes its nodes' pools
        await client.connection_pool.disconnect()  # a pool passed in is not closed


def _options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "max_connections": settings.redis_max_connections,
        "timeout": settings.redis_pool_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
        "client_name": CLIENT_NAME,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if settings.redis_tls_ca_file is not None:  # only with rediss:// (settings.py)
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    return options


def _url(settings: Settings) -> str:
    url = settings.redis_url
    if settings.redis_db is not None:  # the URL's database would win over `db=`
        url = urlunsplit(urlsplit(url)._replace(path=f"/{settings.redis_db}"))
    return url


def operation_timeout(settings: Settings) -> float:
    """The deadline of one cache operation: a pool wait, a connect, a request and a reply."""
    return (
        settings.redis_pool_timeout
        + settings.redis_connect_timeout
        + settings.redis_socket_timeout * 2
    )


def redacted_url(url: str) -> str:
    """The Redis URL without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def secrets_of(settings: Settings) -> list[str]:
    """The passwords that must never appear in a log line or a response."""
    candidates = (
        settings.redis_password and settings.redis_password.get_secret_value(),
        urlsplit(settings.redis_url).password,
        settings.redis_sentinel_password and settings.redis_sentinel_password.get_secret_value(),
    )
    return [secret for secret in candidates if secret]
