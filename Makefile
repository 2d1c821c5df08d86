# The few verbs a newcomer needs. Each is a thin call into scripts/ or manage.py.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(VENV)/bin/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) scripts/run.py

# Debian packages the suite needs (Chromium for the browser tests): installed when missing, as
# root, or named in one command to run; nothing to do on a machine that has them.
test: $(VENV)/.dev
	bash scripts/system-packages.sh
	$(PY) scripts/test.py $(ARGS)

# Style (ruff check, ruff format) and the import direction (import-linter, pyproject.toml).
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(VENV)/.dev
	$(PY) scripts/bench.py $(ARGS)

clean:
	rm -rf var $(VENV)
