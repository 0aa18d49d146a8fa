"""`make profile`: a flame graph of the hit path under load, recorded with py-spy.

    python -m bench.profile [--duration 20] [--heroes 500] [--blocking]

Starts the product as `make run` does (`python -m app serve`, one worker: HOST, PORT,
WEB_CONCURRENCY=1, ACCESS_LOG=false) on a fresh seeded PostgreSQL database and a throwaway
redis-server, reads every hero twice (the cache, and the near cache when on, is then warm),
puts wrk load on GET by id over every hero, and meanwhile runs

    py-spy record -o bench/results/profile.svg --pid <server pid> --duration N --nonblocking

(`--nonblocking`: py-spy reads the process without pausing it, so that the profile does not
slow the hit path down; `--blocking` for exact stacks). Extra settings for the server come
from the environment with a `PROFILE_` prefix, e.g. `PROFILE_CACHE_NEAR_ENABLED=false`.
py-spy needs ptrace rights on the server (root, or CAP_SYS_PTRACE in a container).
Everything is stopped and the database dropped at the end; logs in `bench/results/logs-profile/`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from bench.config import PATHS, RESULTS_DIR, ROOT, BenchConfig

if str(ROOT) not in sys.path:  # `tests.support` and `app` are imported from the repo root
    sys.path.insert(0, str(ROOT))

import httpx

from app.api.tokens import mint
from bench import client
from bench.load import LoadResult, LoadRunner
from bench.procs import Processes, Server
from bench.session import seeded_session
from tests.support import postgres_available

OUTPUT = RESULTS_DIR / "profile.svg"
RAMP_SECONDS = 2.0  # wrk runs this long before py-spy starts, and as long after it stopped
ENV_PREFIX = "PROFILE_"
TOKEN_TTL_S = 3600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds py-spy records")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--heroes", type=int, default=BenchConfig.heroes)
    parser.add_argument("--connections", type=int, default=BenchConfig.connections)
    parser.add_argument("--blocking", action="store_true", help="let py-spy pause the process")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def py_spy() -> str:
    found = Path(sys.executable).parent / "py-spy"
    if found.exists():
        return str(found)
    which = shutil.which("py-spy")
    if which is None:
        raise RuntimeError("py-spy not found: `uv sync --group bench` installs it")
    return which


def profile_settings() -> dict[str, str]:
    """The server settings given with the `PROFILE_` prefix."""
    return {
        key.removeprefix(ENV_PREFIX): value
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX)
    }


def auth_headers() -> dict[str, str]:
    """With PROFILE_AUTH_ENABLED=true (and PROFILE_AUTH_JWT_SECRET, _ISSUER, _AUDIENCE): the
    bearer token (tales.read) every request of the profile carries."""
    extra = profile_settings()
    if extra.get("AUTH_ENABLED", "").lower() != "true":
        return {}
    token = mint(
        extra["AUTH_JWT_SECRET"],
        issuer=extra["AUTH_ISSUER"],
        audience=extra["AUTH_AUDIENCE"],
        scopes=["tales.read"],
        subject="profile",
        ttl_s=TOKEN_TTL_S,
    )
    return {"Authorization": f"Bearer {token}"}


def warm(server: Server, paths: list[str]) -> None:
    headers = auth_headers()
    for _ in range(2):
        if headers:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as http:
                for path in paths:
                    http.get(path).raise_for_status()
            continue
        statuses, errors, _ = client.fire(server.url, paths)
        if client.non_2xx(statuses) or errors:
            raise RuntimeError(f"warm-up failed: {dict(statuses)}, socket errors {errors}")
    stats = client.cache_stats(server.url)
    print(f"  warm: {len(paths)} heroes read twice; near cache {stats['near']}", flush=True)


def record(
    procs: Processes,
    loader: LoadRunner,
    server: Server,
    paths: list[str],
    args: argparse.Namespace,
) -> None:
    load: list[LoadResult] = []
    thread = threading.Thread(
        target=lambda: load.append(
            loader.run("profile-get", server.url, paths, headers=auth_headers())
        ),
        daemon=True,
    )
    before = client.cache_stats(server.url)
    thread.start()
    time.sleep(RAMP_SECONDS)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [py_spy(), "record", "-o", str(args.output), "--pid", str(server.proc.pid)]
    cmd += ["--duration", str(args.duration), "--rate", str(args.rate), "--format", "flamegraph"]
    cmd += [] if args.blocking else ["--nonblocking"]
    print(f"  $ {' '.join(cmd)}", flush=True)
    code, _out, err = procs.run("py-spy", cmd, timeout=args.duration + 60)
    thread.join()
    if code != 0 or not args.output.exists():
        raise RuntimeError(f"py-spy failed ({code}): {err.strip()[-800:]}")
    d = client.delta(before, client.cache_stats(server.url), "hero")
    if load:
        r = load[0]
        print(
            f"  load: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
            f"non-2xx {r.non_2xx}; hit rate {d['hit_rate']}, near hits {d['near_hits']}"
        )
    print(f"\nwritten {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = BenchConfig(heroes=args.heroes)
    if not postgres_available():
        print("PostgreSQL is not answering (scripts/ensure-test-services.sh starts it)")
        return 1
    with seeded_session("profile", cfg) as session:
        procs, redis = session.procs, session.redis
        print(f"  redis-server on port {redis.port}")
        server = procs.serve_app(
            "app-serve", session.database_url, redis.url, announce=True, **profile_settings()
        )
        hero_ids = client.collect_ids(server.url, PATHS["hero"], auth_headers())
        paths = [f"{PATHS['hero']}/{i}" for i in hero_ids]
        warm(server, paths)
        duration = args.duration + 2 * int(RAMP_SECONDS)
        loader = LoadRunner(
            procs, session.work_dir, threads=1, connections=args.connections, duration=duration
        )
        print(f"== profile: {args.duration} s of GET by id hits under load", flush=True)
        record(procs, loader, server, paths, args)
        return 0


if __name__ == "__main__":
    sys.exit(main())
