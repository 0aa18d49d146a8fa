"""Real-process test harnesses (Redis, PostgreSQL, fault-injecting TCP proxy)."""

from .fault_proxy import FaultProxy, ProxyMode
from .ports import free_port
from .postgres import (
    create_database,
    created_databases,
    drop_all_created,
    drop_database,
    postgres_available,
    postgres_url,
)
from .redis_server import RedisServer

__all__ = [
    "FaultProxy",
    "ProxyMode",
    "RedisServer",
    "create_database",
    "created_databases",
    "drop_all_created",
    "drop_database",
    "free_port",
    "postgres_available",
    "postgres_url",
]
