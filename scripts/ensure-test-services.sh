#!/usr/bin/env bash
# Make sure the services the test suite needs are available before pytest runs:
#
#   * redis-server on PATH: the tests start their own throwaway redis-server
#     processes (installed with apt-get when missing and apt-get exists);
#   * Debian's chromium and chromium-driver (/usr/bin/chromium): the dashboard's
#     browser test drives it with playwright; and promtool (Debian's prometheus
#     package) for the alert rules' check: both installed with apt-get when missing;
#   * PostgreSQL answering on 127.0.0.1:5432: the tests create their own
#     database there (the machine's cluster is started with pg_ctlcluster when
#     it is installed but not running).
#
# Override the PostgreSQL address with TEST_PG_HOST / TEST_PG_PORT.
set -euo pipefail

PG_HOST="${TEST_PG_HOST:-127.0.0.1}"
PG_PORT="${TEST_PG_PORT:-5432}"
PG_WAIT_SECONDS="${TEST_PG_WAIT_SECONDS:-30}"

log() { printf '[ensure-test-services] %s\n' "$*"; }
die() { printf '[ensure-test-services] error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through passwordless sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# ---------------------------------------------------------------- redis-server
ensure_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        log "redis-server: $(redis-server --version | head -n 1)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        die "redis-server is not on PATH and apt-get is not available; install Redis (redis-server) first"
    fi
    log "redis-server not found: installing it with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed (are you root?)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server </dev/null \
        || die "apt-get install redis-server failed"
    hash -r
    command -v redis-server >/dev/null 2>&1 \
        || die "redis-server still not on PATH after installing it"
    log "redis-server: $(redis-server --version | head -n 1)"
}

# ------------------------------------------- chromium, chromium-driver, promtool
# Installs the Debian packages whose command is missing (idempotent: nothing to do when
# all are there). Usage: ensure_debian_commands "command:package" ...
ensure_debian_commands() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "missing ${missing[*]} and apt-get is not available; install them first"
    log "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed (are you root?)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" </dev/null || die "apt-get install ${missing[*]} failed"
    hash -r
}

# ------------------------------------------------------------------ PostgreSQL
pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        # No client tools: settle for "something accepts TCP connections there".
        (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
    fi
}

start_pg_clusters() {
    local started=1 dir version
    for dir in /etc/postgresql/*/main; do
        [ -d "$dir" ] || continue
        version="$(basename "$(dirname "$dir")")"
        log "starting PostgreSQL cluster $version/main"
        if pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
            started=0
        else
            log "pg_ctlcluster $version main start failed (it may already be running)"
        fi
    done
    return "$started"
}

ensure_postgres() {
    if pg_answers; then
        log "PostgreSQL answers on $PG_HOST:$PG_PORT"
        return 0
    fi
    log "PostgreSQL is not answering on $PG_HOST:$PG_PORT"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        die "PostgreSQL is not answering on $PG_HOST:$PG_PORT and pg_ctlcluster is not available to start it; start PostgreSQL first"
    fi
    start_pg_clusters || log "no cluster could be started from /etc/postgresql"

    local waited=0
    until pg_answers; do
        if [ "$waited" -ge "$PG_WAIT_SECONDS" ]; then
            die "PostgreSQL still not answering on $PG_HOST:$PG_PORT after ${PG_WAIT_SECONDS}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "PostgreSQL answers on $PG_HOST:$PG_PORT"
}

ensure_redis
ensure_postgres
ensure_debian_commands chromium:chromium chromedriver:chromium-driver promtool:prometheus
