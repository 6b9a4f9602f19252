# Citoyens — developer commands. `make run` and `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := wsgi.py

.PHONY: run test fuzz lint security format install checkers audit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The standards checkers pinned in package.json (vnu, axe-core, Lighthouse), from npm.
# Without npm the vnu and axe tests skip and say why.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; \
	else echo "npm not found: the vnu and axe checks will be skipped"; fi

checkers: node_modules/.installed

instance:
	mkdir -p instance

# Development is chosen explicitly: without CITOYENS_ENV the app runs in production.
run: export CITOYENS_ENV := development
run: install instance
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	@# The worker (e-mails, invoice runs, periodic tasks) runs beside the server, stopped with it.
	$(BIN)/flask jobs worker --workers 2 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check .

# bandit on the package: a medium or high finding fails (or its line says `# nosec BXXX`
# and why). pip-audit on the installed packages when its data can be reached; offline it
# says "pip-audit skipped" and passes.
security: install
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive citoyens --severity-level medium
	$(BIN)/python scripts/audit_dependencies.py

# Property tests run derandomized (Hypothesis profile "ci"): the same cases on every run.
test: install checkers lint security
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The property tests only, long, with fresh random cases (FUZZ_FACTOR times their examples).
FUZZ_FACTOR ?= 20
fuzz: install
	HYPOTHESIS_PROFILE=fuzz FUZZ_FACTOR=$(FUZZ_FACTOR) $(BIN)/python -m pytest \
		-m "hypothesis and not browser" -p no:cacheprovider -q $(PYTEST_ARGS)

# vnu, axe and Lighthouse (mobile) on the demo data, one report: build/audit/report.md.
audit: install checkers
	$(BIN)/python scripts/audit.py

# The README's pictures (phone and desktop), from the demo data: docs/screenshots/*.png.
screenshots: install
	$(BIN)/python scripts/screenshots.py

# Issue 15's table: throughput against a bare Flask app (gunicorn, one sync worker, wrk,
# each pinned to its CPU), statements, the three-children month, the first visit. Writes
# bench/results/<date>-<scale>.json. SCALE=large: DATABASE_URL=postgresql://… (100,000
# households; the staff lists' 100k/1k ratios and EXPLAIN). Per-page queries and sizes:
# bench/pages.py.
SCALE ?= small
bench: install
	$(BIN)/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache instance/*.sqlite3
