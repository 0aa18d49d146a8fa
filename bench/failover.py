"""Failover rows: a Redis primary SIGKILLed while clients read, as the clients saw it.

One measurement for every mode (`measure`): `LOAD_CONCURRENCY` clients read heroes without
pause; `kill()` SIGKILLs the primary; a probe then reads stories (only the probe reads
stories), each one never read before (`cold_ids`: no entry in Redis, no near copy), twice in
a row, until the first read's fill was stored in Redis and the second read was a hit (the
story counters `sets`, then `hits`, grew), i.e. the promoted replica serves the service
again. (A story read before the kill would not tell: its entry was replicated, so the
promoted replica serves it without a fill, and a near copy may serve it without Redis.)
Reported, from the kill: when the replica was promoted (as the cluster or the sentinels
say), when requests succeeded again (the end of the last request that failed: non-2xx or no
answer; 0 when none failed), when fills and hits resumed, the longest a request took
meanwhile, the non-2xx and transport errors, and the cache operations that failed meanwhile
(answered from the database). Figures of one run on a noisy machine: read them as orders
of magnitude.

`sentinel_rows` runs it on a primary, a replica and three sentinels of its own
(`tests/support/redis_sentinel.py`); `bench/cluster.py` runs it on its cluster.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import client
from bench.config import PATHS
from bench.procs import Server, app_env
from bench.scenarios import Context
from tests.support.redis_sentinel import SentinelGroup

SENTINEL_PREFIX = "benchsn:"
LOAD_CONCURRENCY = 8
PROBE_INTERVAL = 0.02
RESUME_TIMEOUT = 30.0
AFTER_RESUME = 1.0  # the load goes on this long after the hits resumed (and before the kill)
READ_IDS = 200
#: In sentinel mode REDIS_URL's host and port are not used (the sentinels name the primary).
UNUSED_HOST_URL = "redis://primary-named-by-the-sentinels/0"


@dataclass
class Requests:
    """What the clients saw: statuses, transport errors, and when each failure ended."""

    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    failed_at: list[float] = field(default_factory=list)  # monotonic end of each failure
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end)

    async def get(self, http: httpx.AsyncClient, path: str) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await http.get(path)
        except httpx.HTTPError:
            response = None
            self.transport_errors += 1
        ended = time.monotonic()
        self.spans.append((started, ended))
        if response is not None:
            self.statuses[response.status_code] += 1
        if response is None or not 200 <= response.status_code < 300:
            self.failed_at.append(ended)
        return response


def cold_ids(ctx: Context) -> list[str]:
    """Stories no scenario before the failover read (the probe's, one per read pair)."""
    return ctx.ids["story"][READ_IDS:]


def _story(stats: dict[str, Any]) -> dict[str, int]:
    """The story counters (only the probe reads stories)."""
    counters = stats["entities"]["story"]
    return {"sets": int(counters["sets"]), "hits": int(counters["hits"])}


async def measure(
    server: Server,
    kill: Callable[[], None],
    promoted: Callable[[], bool],
    heroes: list[str],
    probe_ids: list[str],
) -> dict[str, Any]:
    """The failover as the clients of `server` saw it (see the module docstring)."""
    seen = Requests()
    running = True
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:

        async def load() -> None:
            while running:
                await seen.get(http, f"{PATHS['hero']}/{random.choice(heroes)}")

        async def stats() -> dict[str, Any]:
            return dict((await http.get("/cache/stats")).json())

        before = await stats()
        tasks = [asyncio.create_task(load()) for _ in range(LOAD_CONCURRENCY)]
        await asyncio.sleep(AFTER_RESUME)
        kill()
        killed = time.monotonic()
        promoted_s: float | None = None
        resumed: float | None = None
        cold = iter(probe_ids)  # an id is used until a read of it fills or hits
        path = f"{PATHS['story']}/{next(cold)}"
        try:
            while resumed is None and time.monotonic() - killed < RESUME_TIMEOUT:
                if promoted_s is None and await asyncio.to_thread(promoted):
                    promoted_s = time.monotonic() - killed
                counted = _story(await stats())
                await seen.get(http, path)
                filled = _story(await stats())
                await seen.get(http, path)
                if (
                    filled["sets"] > counted["sets"]
                    and _story(await stats())["hits"] > filled["hits"]
                ):
                    resumed = time.monotonic() - killed
                if filled["sets"] > counted["sets"] or filled["hits"] > counted["hits"]:
                    path = f"{PATHS['story']}/{next(cold, None) or random.choice(probe_ids)}"
                await asyncio.sleep(PROBE_INTERVAL)
            await asyncio.sleep(AFTER_RESUME)
        finally:
            running = False
            await asyncio.gather(*tasks)
        after = await stats()
    if resumed is None:
        raise RuntimeError(f"no fill and hit on the failed-over primary in {RESUME_TIMEOUT} s")
    last_failure = max((t for t in seen.failed_at if t >= killed), default=killed)
    return {
        "promoted_s": round(promoted_s if promoted_s is not None else resumed, 3),
        "requests_ok_again_s": round(last_failure - killed, 3),
        "failover_s": round(resumed, 3),
        "slowest_request_s": round(
            max((end - start for start, end in seen.spans if end >= killed), default=0.0), 3
        ),
        "requests": sum(seen.statuses.values()) + seen.transport_errors,
        "non_2xx": client.non_2xx(seen.statuses),
        "transport_errors": seen.transport_errors,
        "statuses": {str(code): count for code, count in seen.statuses.items()},
        "cache_errors": int(after["total"]["errors"]) - int(before["total"]["errors"]),
        "probe_ids": len(probe_ids),
    }


def report(what: str, result: dict[str, Any]) -> None:
    print(
        f"  failover ({what}): promoted after {result['promoted_s']:.2f} s; requests "
        f"succeed again after {result['requests_ok_again_s']:.2f} s; cache fills and hits "
        f"again after {result['failover_s']:.2f} s; slowest request "
        f"{result['slowest_request_s']:.2f} s; "
        f"non-2xx {result['non_2xx']}, transport errors {result['transport_errors']} of "
        f"{result['requests']} requests; cache operations failed (answered from the "
        f"database) {result['cache_errors']}",
        flush=True,
    )


def sentinel_rows(ctx: Context) -> None:
    print("\n== Redis Sentinel: failover", flush=True)
    group = SentinelGroup(
        password=secrets.token_urlsafe(16), sentinel_password=secrets.token_urlsafe(16)
    )
    with group:
        server = ctx.procs.start_uvicorn(
            "app-sentinel",
            "app.main:app",
            app_env(
                database_url=ctx.database_url,
                log_level="WARNING",
                redis_mode="sentinel",
                redis_url=UNUSED_HOST_URL,
                redis_sentinels=group.addresses,
                redis_sentinel_master=group.master_name,
                redis_sentinel_password=group.sentinel_password,
                redis_password=group.password,
                cache_key_prefix=SENTINEL_PREFIX,
            ),
        )
        ctx.procs.wait_ready(server)
        print(
            f"  primary :{group.primary.port}, replica :{group.replica.port}, sentinels "
            f"{group.addresses}; app :{server.port}"
        )
        heroes = ctx.ids["hero"][:READ_IDS]
        client.fire(server.url, [f"{PATHS['hero']}/{i}" for i in heroes] * 2)
        result = asyncio.run(
            measure(
                server,
                group.kill_primary,
                lambda: group.master_port() == group.replica.port,
                heroes,
                cold_ids(ctx),
            )
        )
        report(f"sentinel, primary :{group.primary.port} SIGKILLed", result)
        ctx.procs.stop(server.proc)  # before its Redis goes
    ctx.results["sentinel"] = {"failover": result}
