# syntax=docker/dockerfile:1
# tales-api image, built the way uv's Docker guide documents: uv copied from its own image
# into a builder stage, dependencies synced first (a cached layer while uv.lock holds), then
# the project installed non-editable and byte-compiled; the runtime stage gets the venv and
# the migrations only, runs as a non-root user under tini, and refuses to start without its
# settings (APP_ENV=production: DATABASE_URL or DATABASE_HOST..., REDIS_URL, CACHE_KEY_SALT).
#
#   docker build -t tales-api .
#   docker compose up --build          # with PostgreSQL, Redis and the one-shot migration
#
# tests/deploy/test_image_commands.py runs this file's builder commands and entrypoint
# outside Docker; `make lint` runs hadolint on it and validates docker-compose.yml.

# python 3.11.14, Debian bookworm, slim: the multi-architecture index digest
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ----------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

COPY --from=uv /uv /uvx /bin/

# Byte-compile what is installed; copy from the cache mount (hard links cannot cross it);
# the image's own Python, never a downloaded one; the venv where the runtime expects it.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project --no-editable

# Then the project, installed into the venv's site-packages (not a link to /app/app).
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# ----------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

# tini: PID 1 that forwards SIGTERM to the server and reaps zombies (`docker run --init`
# cannot be required of every runner).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

# APP_ENV=production: no silent SQLite / localhost-Redis / empty-salt defaults.
# HOST 0.0.0.0 inside the container; compose publishes it on 127.0.0.1 only.
# FORWARDED_ALLOW_IPS: set it to the load balancer's address(es) to trust its
# X-Forwarded-For/-Proto (uvicorn's proxy headers, on by default).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    APP_HOME=/app \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    GRACEFUL_SHUTDOWN_TIMEOUT=20 \
    FORWARDED_ALLOW_IPS=127.0.0.1
# Bearer tokens required: give AUTH_JWT_SECRET (or AUTH_JWKS_FILE), AUTH_ISSUER, AUTH_AUDIENCE.
ENV AUTH_ENABLED=true

WORKDIR /app

# Only what runs: the venv (the app package inside it, byte-compiled), the migrations and
# the entrypoint; owned by root, read-only for the app user.
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini ./
COPY alembic ./alembic
COPY --chmod=0755 scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh
RUN python -m compileall -q alembic

USER 10001:10001

EXPOSE 8000

# uvicorn finishes requests in flight on SIGTERM, for GRACEFUL_SHUTDOWN_TIMEOUT seconds
# (give `docker stop -t` / compose's stop_grace_period more than that).
STOPSIGNAL SIGTERM

# The one healthcheck (compose does not repeat it), on the configured PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--", "/app/scripts/docker-entrypoint.sh"]
CMD ["serve"]
