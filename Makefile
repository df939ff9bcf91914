# One entry point for every routine task; CI calls the same targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= staging

.PHONY: install dev test test-unit test-integration test-infra check fmt plan bench load screenshots \
	openapi clean deploy rollback restore preflight

# uv resolves and downloads in parallel (about 1 min here against pip's 4.5 min for the
# Pulumi providers); plain pip is the fallback when uv cannot be installed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,infra,load]'; \
	else \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e '.[dev,infra,load]'; \
	fi
	touch $(STAMP)

install: $(STAMP)

## make dev: serve on http://127.0.0.1:8000 with the embedded defaults (SQLite file, memory stores)
dev: $(STAMP)
	$(BIN)/cortiware serve --host 127.0.0.1 --port 8000 --reload

## make test: every test (unit, integration on real PostgreSQL/Redis, infra under Pulumi mocks)
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-infra: $(STAMP)
	$(BIN)/pytest tests/infra $(PYTEST_ARGS)

## make check: lint + strict types over service/ and infra/ + the service's import layers
check: $(STAMP)
	$(BIN)/ruff check service infra ops tests benchmarks loadtests
	$(BIN)/ruff format --check service infra ops tests benchmarks loadtests
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format service infra ops tests benchmarks loadtests
	$(BIN)/ruff check --fix service infra ops tests benchmarks loadtests

## make plan STACK=staging|prod: the Pulumi program under mocks, offline, plus policy results
plan: $(STAMP)
	$(BIN)/python -m infra.plan --stack $(STACK)

## make deploy STACK=staging|prod TAG=…: build (linux/amd64), push, snapshot, migrate, roll, smoke
## (runbooks/deploy.md; DEPLOY_ARGS=--skip-build for a tag already pushed)
deploy: $(STAMP)
	test -n "$(TAG)" || { echo "make deploy: TAG=… is required" >&2; exit 2; }
	$(BIN)/python -m ops.deploy --stack $(STACK) --tag $(TAG) $(DEPLOY_ARGS)

## make rollback STACK=… [TO=tag]: previous kept task definition, smoke, then config + pulumi up
## (runbooks/rollback.md; ROLLBACK_ARGS=--via-pulumi with TO=… for the stack-only path)
rollback: $(STAMP)
	$(BIN)/python -m ops.rollback --stack $(STACK) $(if $(TO),--to $(TO)) $(ROLLBACK_ARGS)

## make restore STACK=… TIME=2026-01-31T09:55:00Z (or TIME=latest): PITR into a new instance
## next to the live one (runbooks/restore-database.md)
restore: $(STAMP)
	test -n "$(TIME)" || { echo "make restore: TIME=<UTC time>|latest is required" >&2; exit 2; }
	$(BIN)/python -m ops.restore --stack $(STACK) $(if $(filter latest,$(TIME)),--latest,--time $(TIME))

## make preflight STACK=…: the stack's config against what AWS accepts, offline (secrets set,
## engine versions, instance classes, runtimes, the program's own validation)
preflight: $(STAMP)
	$(BIN)/python -m ops.preflight --stack $(STACK)

## make bench: benchmarks against their named peers; results go to docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## make load SCENARIO=onboarding|api|dashboard [LOAD_ARGS="--short --chaos redis-kill --host URL"]:
## the requirements' load scenarios (Locust) on a private PostgreSQL + Redis stack, judged
SCENARIO ?= api
load: $(STAMP)
	$(BIN)/python loadtests/run.py --scenario $(SCENARIO) $(LOAD_ARGS)

## make screenshots: the browser suite, saving the guides' screenshots into docs/portals/img
screenshots: $(STAMP)
	CORTIWARE_SCREENSHOT_DIR=docs/portals/img $(BIN)/pytest tests/browser $(PYTEST_ARGS)

## make openapi: regenerate docs/openapi.json from the application's routes
openapi: $(STAMP)
	$(BIN)/cortiware openapi docs/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cortiware-dev.sqlite3*
