# durable-agents: every target sets up what it needs on a fresh machine (a .venv with the
# dependencies, and the Temporal CLI built from Go modules into the user cache), and is
# fast when that is already done.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: setup temporal-cli temporal-cluster postgres browser demo test test-cluster lint worker \
	bench chaos cluster cluster-status cluster-down clean

$(DEPS_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "durable-agents needs Python >= 3.11"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.deps-*
	@touch $@

setup: $(DEPS_STAMP) temporal-cli

# The bench-only extra (the LangGraph peer), on top of the dev dependencies.
$(BENCH_STAMP): $(DEPS_STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@rm -f $(VENV)/.bench-*
	@touch $@

# Prints progress while the first build runs (a few minutes); instant once cached.
temporal-cli: $(DEPS_STAMP)
	@$(PY) -m durable_agents._devtools.temporal_cli > /dev/null

# The native cluster's Temporal server, SQL tool and Web UI server, built from Go modules
# at the versions of deploy/temporal/versions.env into the user cache (a few minutes the
# first time, on a low priority; instant once cached).
temporal-cluster: temporal-cli
	@nice $(PY) -m durable_agents._devtools.cluster_build > /dev/null

# PostgreSQL server binaries from Debian's packages (instant once installed).
postgres:
	@sh scripts/install-postgres.sh

# A real Temporal cluster on this machine: PostgreSQL, the Temporal server, the Web UI and
# CLUSTER_WORKERS agent workers, all on 127.0.0.1, state in .data/cluster/.
CLUSTER_WORKERS ?= 2
CLUSTER_ARGS ?=
cluster: setup temporal-cluster postgres
	$(PY) -m durable_agents._devtools.cluster up --workers $(CLUSTER_WORKERS) $(CLUSTER_ARGS)

cluster-status: $(DEPS_STAMP)
	@$(PY) -m durable_agents._devtools.cluster status $(CLUSTER_ARGS)

cluster-down: $(DEPS_STAMP)
	$(PY) -m durable_agents._devtools.cluster down $(CLUSTER_ARGS)

# The e2e, crash, replay and CLI suites against a cluster of their own (.data/test-cluster,
# free ports, TEST_CLUSTER_WORKERS workers); each pytest session gets its own namespace, so
# the cluster may be reused by the next run. `make cluster-down CLUSTER_ARGS="--root
# .data/test-cluster"` stops it.
TEST_CLUSTER_ROOT := .data/test-cluster
TEST_CLUSTER_WORKERS ?= 2
# (The CLI suites, test_cli.py and test_cli_dev.py, are e2e.)
TEST_CLUSTER_SUITES := -m "e2e or crash or replay or upgrade" tests/ \
	--ignore tests/test_dev_server.py --ignore tests/test_cluster_smoke.py \
	--ignore tests/test_bench_smoke.py
test-cluster: setup temporal-cluster postgres
	@nice $(PY) -m durable_agents._devtools.cluster_build --upgrade > /dev/null
	AGENT_PLUGINS=$(AGENT_PLUGINS),tests.support.test_agent $(PY) -m durable_agents._devtools.cluster up \
		--root $(TEST_CLUSTER_ROOT) --free-ports --workers $(TEST_CLUSTER_WORKERS)
	DURABLE_AGENTS_TEST_CLUSTER=$(TEST_CLUSTER_ROOT) $(PY) -m pytest $(TEST_CLUSTER_SUITES) $(PYTEST_ARGS)

# Headless Chromium from Debian's packages for the Web UI test (instant once installed).
browser:
	@sh scripts/install-browser.sh

demo: setup
	$(PY) -m examples.demo $(DEMO_ARGS)

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup temporal-cluster postgres browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The worker serves the example agents unless AGENT_PLUGINS names others.
AGENT_PLUGINS ?= examples.db_tuner,examples.file_editor

worker: setup
	AGENT_PLUGINS=$(AGENT_PLUGINS) $(VENV)/bin/agent-worker

# Benchmarks against floors measured in the same run; writes bench/results/latest.json.
# Never part of `make test` (a smoke-size run is, without the LangGraph peer unless the
# bench extra is installed). `make bench BENCH_ARGS=--smoke` is quick.
bench: setup $(BENCH_STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# Chaos: worker kills, server restarts and model faults against the invariants.
# `make chaos CHAOS_ARGS="--runs 50 --kills 100 --server-restarts 5 --seed 7"` for a large run.
chaos: setup
	$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf .data .mypy_cache .ruff_cache .pytest_cache
