# ScaleEnv: `make demo` runs the main job on the embedded default; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DOMAINS ?= 5
SEED ?= 1
WORKERS ?= 2
TASKS ?= 4

.PHONY: setup demo test test-services worker serve bench migrate clean

# Idempotent: creates .venv and installs the project with its test extras; re-running only
# reinstalls when pyproject.toml changed.
setup: $(VENV)/.installed var/secret_key
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Local state lives in var/ (SQLite file, broker folders, static files); settings never write it.
var/secret_key:
	mkdir -p var/staticfiles
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

migrate: setup
	$(PY) manage.py migrate --noinput -v0

# Sets up, migrates, starts a Celery worker (filesystem broker, no server needed), synthesizes
# $(DOMAINS) domains through it, makes $(TASKS) tasks per domain, runs the oracle and perturbed
# agents on them, makes a curator account (new password each run) and an agent token, then serves
# the site on $(PORT) until Ctrl-C.
demo: migrate
	@set -e; \
	$(VENV)/bin/celery -A scaleenv_site worker -Q exec,llm -c $(WORKERS) --loglevel=WARNING >var/worker.log 2>&1 & \
	WORKER=$$!; trap 'kill $$WORKER 2>/dev/null; wait $$WORKER 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py synthesize --backend procedural --domains $(DOMAINS) --seed $(SEED); \
	$(PY) manage.py make_tasks --domains all --per-domain $(TASKS) --seed $(SEED); \
	$(PY) manage.py rollout --agent oracle --tasks verified --trials 1; \
	$(PY) manage.py rollout --agent perturbed --tasks verified --trials 1; \
	umask 077; { $(PY) manage.py create_user curator --role curator; \
	  $(PY) manage.py create_user trainer --role agent --token; } > var/demo-accounts.txt; \
	echo "Accounts (also in var/demo-accounts.txt):"; sed 's/^/  /' var/demo-accounts.txt; \
	echo "Serving http://127.0.0.1:$(PORT)/ (Ctrl-C to stop); sign in as curator"; \
	$(PY) manage.py runserver --noreload 0.0.0.0:$(PORT)

worker: migrate
	$(VENV)/bin/celery -A scaleenv_site worker -Q exec,llm -c $(WORKERS) --loglevel=INFO

# The site plus a Celery worker, so batches and exports started from the browser run.
serve: migrate
	@set -e; \
	$(VENV)/bin/celery -A scaleenv_site worker -Q exec,llm -c $(WORKERS) --loglevel=WARNING >var/worker.log 2>&1 & \
	WORKER=$$!; trap 'kill $$WORKER 2>/dev/null; wait $$WORKER 2>/dev/null' EXIT INT TERM; \
	echo "Worker log: var/worker.log; serving http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"; \
	$(PY) manage.py runserver --noreload 0.0.0.0:$(PORT)

bench: migrate
	$(PY) manage.py bench_runtime

# The test suite on the embedded default (SQLite, no servers). Tests that need PostgreSQL,
# Redis and a real Celery worker are marked `services` and run by `make test-services` (CI).
test: setup
	$(PY) -m pytest -q -m "not services" $(PYTEST_ARGS)

test-services: setup
	$(PY) -m pytest -q -m services $(PYTEST_ARGS)

clean:
	rm -rf var/broker var/test-*.sqlite3
