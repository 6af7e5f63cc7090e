# Every target creates or reuses the virtualenv itself, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CLUSTER := hack/cluster/cluster.sh

.PHONY: venv lint test test-unit demo demo-down cluster-build cluster-up cluster-down bench crds

$(BIN)/modelplane: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/modelplane

lint: venv
	$(BIN)/ruff check operator tests benchmarks hack
	$(BIN)/ruff format --check operator tests benchmarks hack
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	find hack -name '*.sh' | sort | xargs $(BIN)/shellcheck -x -P SCRIPTDIR

# The whole suite: lint, types, unit and golden tests, and the end-to-end tests on the local control plane
# (built from source on first use, then reused from the cache). The tests' cluster has its own directory and
# ports, so `make test` runs beside a `make demo` cluster, in either order; each variable can be overridden. The ports
# sit below Linux's ephemeral range (32768-60999), where a client connection's local port could already hold one.
test: export MODELPLANE_CLUSTER_DIR ?= /tmp/modelplane-test-cluster
test: export MODELPLANE_APISERVER_PORT ?= 21443
test: export MODELPLANE_ETCD_PORT ?= 21379
test: export MODELPLANE_KCM_PORT ?= 21257
test: export MODELPLANE_SCHEDULER_PORT ?= 21259
test: export MODELPLANE_KWOK_PORT ?= 21247
test: export MODELPLANE_LWS_PORT ?= 21249
test: export MODELPLANE_KEDA_PORT ?= 21251
test: lint
	hack/ensure-chromium.sh
	$(BIN)/pytest

test-unit: venv
	$(BIN)/pytest -m "not cluster"

cluster-build:
	$(CLUSTER) build

cluster-up: venv
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

# The README's first command: local control plane, simulated GPU pools, the operator and examples/.
demo: venv
	hack/demo.sh up

demo-down:
	hack/demo.sh down

crds: venv
	$(BIN)/python hack/gen_crds.py
