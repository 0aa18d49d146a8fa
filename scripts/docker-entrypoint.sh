#!/bin/sh
# Container entry point (run under tini, the image's init: signals reach the server and
# zombies are reaped). Migrations are NOT applied here: they are a one-shot step before the
# app starts (compose's `migrate` service), so replicas never race each other's upgrade and
# the app's role needs no DDL rights.
#
#   IMAGE              -> serve   (python -m app serve: HOST, PORT, WEB_CONCURRENCY, ...)
#   IMAGE serve        -> the same
#   IMAGE migrate      -> python -m app migrate (alembic upgrade head under an advisory lock)
#   IMAGE CMD ARGS...  -> CMD ARGS... (e.g. python -m app seed --size small)
#
# Settings are validated before anything starts: with APP_ENV=production (the image's
# default) DATABASE_URL (or DATABASE_HOST...), REDIS_URL and CACHE_KEY_SALT must be set.
# APP_HOME is where alembic.ini lives (/app in the image).
set -eu

cd "${APP_HOME:-/app}"

command="${1:-serve}"
case "$command" in
    serve | migrate)
        [ "$#" -gt 0 ] && shift
        exec python -m app "$command" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
