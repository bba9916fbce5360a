# Portal Help — the commands of SPEC §3. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell pyenv which python 2>/dev/null || command -v python3.12 || command -v python3.13)
VENV := .venv
PY := $(VENV)/bin/python
PROD_CHECK_ENV := SECRET_KEY=lint-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal_help REDIS_URL=redis://127.0.0.1:6379/0 \
	EMAIL_HOST=127.0.0.1 DEFAULT_FROM_EMAIL=help@portal.example.org \
	PORTAL_BASE_URL=https://portal.example.org ALLOWED_HOSTS=portal.example.org

.PHONY: help install test-deps messages run test bench lint format clean

# Compiled catalogs are committed (make run needs no gettext); rebuilt here when a .po changes.
PO_FILES := $(wildcard locale/*/LC_MESSAGES/*.po)

help:
	@echo "make install  create .venv and install everything (run/test do it when needed)"
	@echo "make run      demo on embedded defaults: SQLite, a real worker without Redis, /dev/mail/"
	@echo "make test     the whole suite against PostgreSQL and Redis on localhost"
	@echo "make bench    the benchmarks of SPEC §8, printed as a table with ratios"
	@echo "make lint     ruff check, ruff format --check, manage.py check --deploy (production)"

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python 3.12 or newer is needed (see .python-version); found $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

# axe-core for the browser tests (tests/e2e), pinned in package-lock.json; nothing of it is served.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed

test-deps: install node_modules/.installed
	@test -x /usr/bin/chromium || { echo "The browser tests need Debian's chromium: apt-get install chromium"; exit 1; }

messages:
	@if command -v msgfmt >/dev/null; then \
		for po in $(PO_FILES); do msgfmt --check-format -o "$${po%.po}.mo" "$$po" || exit 1; done; \
	else echo "msgfmt (gettext) not found: using the committed .mo files"; fi

run: install messages
	$(PY) -m portal.demo

test: test-deps messages
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install messages
	$(PY) -m tests.bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	env $(PROD_CHECK_ENV) DJANGO_SETTINGS_MODULE=settings.production \
		$(PY) manage.py check --deploy --fail-level WARNING

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/
