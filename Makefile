# `make run` starts the service, `make test` runs every check, `make bench` times
# the scores endpoint on synthetic data in the configured database (it replaces
# that data: point FEEDBACK_DATABASE_URL at a scratch database).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
AXE := node_modules/axe-core/axe.min.js

.PHONY: run test lint format bench clean translations extract browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Compiled catalogs are built here, never committed.
translations: $(COMPILED)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile --domain messages --locale $* --input-file $< --output-file $@

# After changing a marked string: refresh the template and every catalog, then
# translate what is new or fuzzy in translations/*/LC_MESSAGES/messages.po.
extract: $(VENV)/.installed
	$(BIN)/pybabel extract --mapping-file babel.cfg --add-comments Translators: \
		--add-location file --sort-by-file --no-wrap --project feedback \
		--output-file translations/messages.pot .
	$(BIN)/pybabel update --input-file translations/messages.pot --output-dir translations \
		--no-wrap --ignore-obsolete --ignore-pot-creation-date

# axe-core for the browser tests, at the version pinned in package-lock.json.
# Chromium itself comes from Debian: apt-get install chromium.
browser-deps: $(AXE)

$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# make run PORT=8000 serves elsewhere; links then point there too, unless
# FEEDBACK_BASE_URL says otherwise.
PORT ?= 5000
run: export FEEDBACK_BASE_URL ?= http://127.0.0.1:$(PORT)
run: $(VENV)/.installed translations
	$(FLASK) db upgrade
	$(FLASK) feedback local-api-key
	$(FLASK) feedback serve --port $(PORT)

test: $(VENV)/.installed translations
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(FLASK) db upgrade
	$(BIN)/python -m feedback.bench $(BENCH_ARGS)

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules test-artifacts
	rm -f $(COMPILED)
