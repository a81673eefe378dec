# eventlet-handler: `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ZK_JAR := /usr/share/java/zookeeper.jar
PYTEST := $(PY) -m pytest
# Each run is its own process: a hub cannot be swapped, nor monkey patching undone, in-process.
TEST_MARK ?= not slow
# The suite fails, instead of skipping, when the ZooKeeper it was promised is missing.
export EVENTLET_HANDLER_REQUIRE_ZOOKEEPER := 1

.PHONY: help venv python-venv zookeeper zookeeper-package test test-unit test-patched test-asyncio test-all demo bench bench-quick build mutants chaos clean
.PHONY: docs docs-venv test-compat test-compat-corners

help:
	@echo "make test      - install what is needed (venv, ZooKeeper) and run the test suite"
	@echo "make test-all  - the same, including tests marked slow (none at present)"
	@echo "make demo      - run examples/demo.py against a local ZooKeeper (or ZK_HOSTS)"
	@echo "make bench     - benchmarks against kazoo's handlers (bench-quick: a short run)"
	@echo "make docs      - build the documentation into docs/_build/html (warnings are errors)"
	@echo "make test-compat - the whole kazoo x eventlet x tooz x Python matrix, one venv each"
	@echo "make mutants   - mutation testing of the core (MUTANTS_MODULES=_selfpipe,_task for a subset)"
	@echo "make chaos     - combined faults on a real ensemble, all three modes, checked (CHAOS_SECONDS, CHAOS_SEED, CHAOS_RUNS, CHAOS_MEMBERS)"

# apt-get install $(1) as root, or with sudo; says what to do when it cannot.
define apt_install
	@echo "Installing Debian's $(1) package (needs root and Debian's package registry)"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1) ) \
	|| { echo "ERROR: could not install Debian's $(1) package; install it by hand (apt-get install $(1)) and rerun"; exit 1; }
endef

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || $(MAKE) --no-print-directory python-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

venv: $(VENV)/.installed

# Debian's python3 has no venv module without python3-venv.
python-venv:
	$(call apt_install,python3-venv)

zookeeper:
	@[ -f $(ZK_JAR) ] && echo "ZooKeeper jars found in /usr/share/java" || $(MAKE) --no-print-directory zookeeper-package
	@command -v java >/dev/null || { echo "ERROR: java not found; apt-get install default-jre-headless"; exit 1; }

zookeeper-package:
	$(call apt_install,zookeeper)
	@[ -f $(ZK_JAR) ] || { echo "ERROR: $(ZK_JAR) still missing after installing zookeeper"; exit 1; }

test: venv zookeeper
	$(MAKE) -k --no-print-directory test-unit test-patched test-asyncio test-compat-corners TEST_MARK="$(TEST_MARK)"

test-unit:
	$(PYTEST) -m "$(TEST_MARK)"

test-patched:
	EVENTLET_HANDLER_TEST_MONKEY_PATCH=1 $(PYTEST) -m "$(TEST_MARK)" tests/integration

test-asyncio:
	EVENTLET_HUB=asyncio $(PYTEST) -m "$(TEST_MARK)" tests/integration

test-all: venv zookeeper
	$(MAKE) -k --no-print-directory test-unit test-patched test-asyncio TEST_MARK="slow or not slow"

demo: venv zookeeper
	$(PY) examples/demo.py

bench: venv zookeeper
	$(PY) benchmarks/run.py

bench-quick: venv zookeeper
	$(PY) benchmarks/run.py --quick

# The oldest and the newest supported kazoo, eventlet and tooz (venvs cached in .compat/).
test-compat-corners:
	$(PY) tools/compat.py --corners

# Every combination, niced (the machine is shared); writes the tables in docs/ and README.md.
test-compat: venv zookeeper
	nice -n 10 $(PY) tools/compat.py --write-table

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs-venv: $(VENV)/.docs-installed

# Offline: intersphinx reads docs/_inv/*.inv. -W: a warning fails the build.
docs: docs-venv
	rm -rf docs/_build
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Mutation testing (cosmic-ray): not part of `make test`; mutants/run.py holds the module list.
mutants: venv zookeeper
	$(PY) -m pip install -q -e '.[test,mutants]'
	nice -n 10 $(PY) mutants/run.py
# Chaos runs (chaos/): CHAOS_SECONDS per mode and seed (150: about 8 minutes for the
# three modes: shared, shared-asyncio, isolated; CHAOS_MODES to pick), CHAOS_SEED (empty: from the clock; the same seed replays the same faults),
# CHAOS_RUNS consecutive seeds, CHAOS_MEMBERS 3 or 5. Reports go to chaos/results/.
CHAOS_SECONDS ?= 150
CHAOS_SEED    ?=
CHAOS_RUNS    ?= 1
CHAOS_MEMBERS ?= 3

chaos: venv zookeeper
	CHAOS_SECONDS="$(CHAOS_SECONDS)" CHAOS_SEED="$(CHAOS_SEED)" CHAOS_RUNS="$(CHAOS_RUNS)" \
	CHAOS_MEMBERS="$(CHAOS_MEMBERS)" $(PY) -m chaos

build: venv
	$(PY) -m pip install -q build
	$(PY) -m build

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache docs/_build .compat
