# corpus developer entry points. Everything runs from a local virtualenv (.venv).

PYTHON ?= python3
VENV ?= .venv
VENV_STAMP := $(VENV)/.installed
# The demo needs corpus and its command only, not the test tools (a fresh machine
# installs in a fraction of the time).
DEMO_STAMP := $(VENV)/.installed-demo
# salt-factories puts unix sockets under the temporary directory: keep it
# short (AF_UNIX paths are limited to 108 bytes; pytest adds pytest-of-USER/pytest-N)
# and out of /tmp itself. One per user: a directory a root run made is not writable
# by anyone else.
TEST_UID := $(shell id -u)
TEST_TMPDIR ?= /var/tmp/corpus-$(TEST_UID)
# Private to its user; root's may be searched (not listed), since the apps of the
# projects under it run as users of their own and must reach their trees.
TEST_TMPDIR_MODE := $(if $(filter 0,$(TEST_UID)),0711,0700)
# As root, `deps` installed every package the tests use: a test that still finds
# one missing fails instead of skipping (CORPUS_TESTS_STRICT, tests/support/needs.py).
TEST_STRICT := $(if $(filter 0,$(TEST_UID)),1,)
# pytest-xdist workers (0: every test in this process, one after another). The tests that make
# containers and nodes run as two groups, each on one worker, and the others beside them, the
# longest groups first (tests/conftest.py). The tests wait on processes, disks and networks more
# than they compute: 3 workers keep 2 cores busy.
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?= --timeout=900 -n $(PYTEST_WORKERS)
# What to run, e.g. `make test TESTS="tests/unit tests/functional"`.
TESTS ?= tests
# -rs: one line per skipped group, saying what it needs; the 15 slowest tests.
PYTEST_REPORT ?= -v -rs --durations=15

.PHONY: deps venv test demo bench lint clean

venv: $(VENV_STAMP)

# Reinstalled only when setup.py (the dependency list) changes. wheel: the tests build
# corpus's wheel (the controller's wheelhouse), which the pip of Debian's python3-venv
# (23.0) does with `setup.py bdist_wheel`.
$(VENV_STAMP): setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install wheel -e '.[test]'
	touch $@

# Each test's Salt configuration gets its own deploy agent: idle ones go after 2 minutes.
# Each run's temporary files go in a short directory of its own (pytest's default,
# pytest-of-USER/pytest-N/popen-gwN, would push a minion's sockets past 108 bytes);
# runs older than a day are removed first.
test: deps venv
	install -d -m $(TEST_TMPDIR_MODE) $(TEST_TMPDIR)
	@test -O $(TEST_TMPDIR) || { echo "$(TEST_TMPDIR) belongs to another user" >&2; exit 1; }
	find $(TEST_TMPDIR) -mindepth 1 -maxdepth 1 -name 'pytest-*' -mmin +1440 -exec rm -rf {} +
	run=$$(mktemp -d $(TEST_TMPDIR)/pytest-XXXXX) && \
	TMPDIR=$(TEST_TMPDIR) CORPUS_AGENT_IDLE_TIMEOUT=120 CORPUS_TESTS_STRICT=$(TEST_STRICT) \
		$(VENV)/bin/pytest $(TESTS) -p no:cacheprovider --basetemp=$$run $(PYTEST_REPORT) $(PYTEST_ARGS)

$(DEMO_STAMP): setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	test $(VENV_STAMP) -nt setup.py || $(VENV)/bin/pip install -e '.[cli]'
	touch $@

demo: $(DEMO_STAMP)
	$(VENV)/bin/python -m mc_project.demo

# As root, the Debian packages the tests need; as a normal user, a note of what is missing.
deps:
	scripts/install-deps

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .tmp build dist *.egg-info $(TEST_TMPDIR)
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
