# syntax=docker/dockerfile:1
# tales-api image: two stages, uv in the builder only, non-root runtime.
#
#   docker build -t tales-api .
#   docker run --rm -p 8000:8000 tales-api      # SQLite in /app/data
#   docker compose up --build                   # with PostgreSQL + Redis

ARG PYTHON_IMAGE=python:3.11-slim
ARG UV_VERSION=0.13.9

# ----------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first (cached layer as long as the lock does not change).
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself.
COPY . .
RUN uv sync --frozen --no-dev --no-editable

# ----------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:${PATH}" \
    PORT=8000 \
    DATABASE_URL=sqlite+aiosqlite:////app/data/tales.db

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Code and venv are owned by root (read-only for the app user); only
# /app/data (the default SQLite location) is writable.
COPY --from=builder /app /app
RUN mkdir -p /app/data \
    && chown app:app /app/data \
    && chmod 0755 /app/scripts/docker-entrypoint.sh

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
