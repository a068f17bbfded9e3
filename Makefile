# StoryHub: the commands the README names.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/storyhub

.PHONY: help venv runtime chromium run migrate seed test test-sqlite test-postgres lint openapi-lint bench fuzz clean

help:
	@echo "make run    - set up .venv, migrate, load demo data, serve on http://127.0.0.1:8000 (SQLite)"
	@echo "make test   - set up .venv and run lint, migration checks and the whole suite on SQLite and PostgreSQL"
	@echo "make bench  - benchmarks on PostgreSQL, writes docs/benchmarks.{md,json}"

# Two markers: .runtime (requirements.txt: all `make run` needs) and .installed (plus the
# test and lint tools of requirements-dev.txt, for `make test` / `make lint` / `make bench`).
# A fresh clone's `make run` installs only the runtime set.
$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

runtime: $(VENV)/.runtime

venv: $(VENV)/.installed

migrate: runtime
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

RUN_ADDR ?= 127.0.0.1:8000
# One events worker (webhooks) in the background for as long as the dev server runs.
run: seed
	@$(PY) manage.py events_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; \
	  $(PY) manage.py runserver $(RUN_ADDR)

lint: venv
	@# .venv is a directory or (in a worktree) a symlink; tracked, a checkout replaces it.
	@test -z "$$(git ls-files .venv 2>/dev/null)" || { echo "lint: .venv is tracked by git; git rm --cached .venv" >&2; exit 1; }
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	DJANGO_SETTINGS_MODULE=storyhub.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=storyhub.settings.test $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=storyhub.settings.test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# Redocly's recommended rules (redocly.yaml) on the schema; needs npx, so not part of `make test`.
openapi-lint: venv
	DJANGO_SETTINGS_MODULE=storyhub.settings.test $(PY) manage.py spectacular --format openapi-json --file .openapi.json
	npx --yes @redocly/cli@2.77.0 lint .openapi.json; status=$$?; rm -f .openapi.json; exit $$status

# Debian's chromium for the browser tests (tests/admin/test_browser.py); fails when CI=true and it cannot be installed.
chromium:
	bash scripts/ensure_chromium.sh

test-sqlite: venv chromium
	env -u DATABASE_URL $(PY) -m pytest

# With CI=true a missing PostgreSQL is a failure; locally it is skipped with a warning.
test-postgres: venv chromium
	@if ! $(PY) scripts/wait_for_db.py --url "$$TEST_DATABASE_URL" --timeout 5; then \
	  if [ "$$CI" = "true" ]; then echo "PostgreSQL is required when CI=true" >&2; exit 1; fi; \
	  echo "WARNING: PostgreSQL not reachable at $$TEST_DATABASE_URL; skipping the PostgreSQL run." >&2; exit 0; \
	fi
	DATABASE_URL="$$TEST_DATABASE_URL" STORYHUB_REQUIRE_POSTGRES=1 $(PY) -m pytest

# Both suite runs side by side (scripts/test_suites.sh); test-sqlite / test-postgres run one.
test: lint chromium
	PY=$(PY) bash scripts/test_suites.sh

# Benchmarks on PostgreSQL (dedicated storyhub_bench database, created and dropped by the run).
BENCH_PG_URL ?= postgres://postgres@127.0.0.1:5432
bench: venv
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && apt-get install -y wrk >/dev/null) || echo "WARNING: wrk missing; throughput is skipped" >&2
	BENCH_PG_URL="$(BENCH_PG_URL)" $(PY) -m bench.run

# API fuzzing with a larger budget than the one inside `make test`.
fuzz: venv
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} FUZZ_MAX_SECONDS=$${FUZZ_MAX_SECONDS:-600} $(PY) -m pytest tests/fuzz -q -p no:cacheprovider

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
