# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
BIND   ?= 127.0.0.1:8000

# Tests use this machine's Postgres and Redis unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mcp_tools
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/1
# The production smoke (tests/ops/test_production_smoke.py): its own database (re-created) and Redis db (flushed).
PRODUCTION_SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mcp_smoke
PRODUCTION_SMOKE_REDIS_URL    ?= redis://127.0.0.1:6379/14
# The official MCP JSON Schemas the protocol tests judge messages by, when they sit beside the clone;
# otherwise the tests generate a stand-in from the official Python SDK's types (scripts/mcp_sdk_schema.py).
MCP_SCHEMA_DIR ?= $(wildcard $(abspath ../shared/mcp/schema))

.PHONY: run test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## run: set up, migrate, load demo data and serve on $(BIND)
run: install
	$(BIN)/python manage.py release
	$(BIN)/python manage.py seed_demo --api-base http://$(BIND)
	$(BIN)/python manage.py serve --bind $(BIND)

## test: install what the tests need and run them against Postgres, Redis and a Celery worker
test: install-dev conformance-suite mcp-schema
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) MCP_SCHEMA_DIR=$(MCP_SCHEMA_DIR) \
	PRODUCTION_SMOKE_DATABASE_URL=$(PRODUCTION_SMOKE_DATABASE_URL) PRODUCTION_SMOKE_REDIS_URL=$(PRODUCTION_SMOKE_REDIS_URL) \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Without the official schema files: generate the SDK's stand-in once (PyPI wheels, cached in .cache/mcp-schema).
.PHONY: mcp-schema
mcp-schema: install-dev
ifeq ($(MCP_SCHEMA_DIR),)
	$(BIN)/python scripts/mcp_sdk_schema.py
endif

clean:
	rm -rf $(VENV) var

## bench: this product vs the official SDK vs a bare-Django floor (not part of `make test`).
## Uses its own database (dropped and re-created) and Redis db; BENCH_QUICK=1 for a short run.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mcp_bench
BENCH_REDIS_URL    ?= redis://127.0.0.1:6379/15
.PHONY: bench
bench: install-dev
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python -m scripts.bench.run

## conformance: start a fresh server with the MCP conformance fixtures (own database mcp_conformance)
## and run the official suite for --requirements 2025-11-25 and 2026-07-28; non-zero exit on any failure
CONFORMANCE_CACHE ?= .cache/conformance
CONFORMANCE_CLI   := $(CONFORMANCE_CACHE)/node_modules/@modelcontextprotocol/conformance/dist/index.js
.PHONY: conformance conformance-suite

$(CONFORMANCE_CLI):
	CONFORMANCE_CACHE=$(CONFORMANCE_CACHE) $(BIN)/python scripts/mcp_conformance.py --install-only

# Node 22 and the suite from the npm registry, cached outside git (.cache/ is ignored).
conformance-suite: $(CONFORMANCE_CLI)

conformance: install-dev conformance-suite
	CONFORMANCE_CACHE=$(CONFORMANCE_CACHE) $(BIN)/python scripts/mcp_conformance.py
