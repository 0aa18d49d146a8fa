#!/bin/sh
# Container entry point: apply migrations, then serve (or run the given command).
#
#   docker run IMAGE                       -> alembic upgrade head; uvicorn on 0.0.0.0:$PORT
#   docker run IMAGE python -m app seed    -> alembic upgrade head; python -m app seed
#
# Set SKIP_MIGRATIONS=1 to skip `alembic upgrade head`.
set -eu

cd /app

if [ "${SKIP_MIGRATIONS:-0}" != "1" ]; then
    echo "docker-entrypoint: alembic upgrade head"
    alembic upgrade head
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

exec uvicorn app.main:app --host 0.0.0.0 --port "${PORT:-8000}"
