# corpus developer entry points. Everything runs from a local virtualenv (.venv).

PYTHON ?= python3
VENV ?= .venv
VENV_STAMP := $(VENV)/.installed
# salt-factories puts unix sockets under the temporary directory: keep it
# short (AF_UNIX paths are limited to 108 bytes) and out of /tmp itself.
TEST_TMPDIR ?= /var/tmp/corpus-tests
PYTEST_ARGS ?= --timeout=900

.PHONY: deps venv test demo bench lint clean

venv: $(VENV_STAMP)

# Reinstalled only when setup.py (the dependency list) changes.
$(VENV_STAMP): setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

# Each test's Salt configuration gets its own deploy agent: idle ones go after 2 minutes.
test: deps venv
	mkdir -p $(TEST_TMPDIR)
	TMPDIR=$(TEST_TMPDIR) CORPUS_AGENT_IDLE_TIMEOUT=120 $(VENV)/bin/pytest tests -v -p no:cacheprovider $(PYTEST_ARGS)

demo: venv
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
