# tsunagu — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CUSTOMERS ?= 2000
DAYS      ?= 180

.PHONY: help demo test lint bench screenshots install install-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed $(VENV)/.installed-system
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The browser tests drive Debian's Chromium (never `playwright install`), render Japanese with
# Noto CJK and fetch Segment's browser library with npm: installed from Debian where missing.
$(VENV)/.installed-system: | $(BIN)/python
	@missing=""; \
	for p in chromium fonts-noto-cjk; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; \
	  else \
	    echo "the browser tests need:$$missing (apt-get install them as root; else they skip)"; \
	  fi; \
	fi
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed ## create .venv and install tsunagu

install-test: $(VENV)/.installed-test ## install tsunagu with the test extras

demo: install ## generate a sample retailer, import it and serve http://127.0.0.1:8000
	$(BIN)/tsunagu --data-dir ./tsunagu-data demo --customers $(CUSTOMERS) --days $(DAYS) --out ./demo-data

test: install-test ## run the whole test suite
	$(BIN)/python -m pytest -q

screenshots: install-test ## write screenshots of the main screens to docs/screenshots/
	TSUNAGU_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/web/test_screens_browser.py tests/web/test_analysis_browser.py tests/web/test_activation_browser.py

lint: install-test ## ruff (check, format) and mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src --ignore-missing-imports

bench: $(VENV)/.installed-bench ## run the benchmarks (prints figures; takes minutes)
	$(BIN)/python benchmarks/ingest_http.py
	$(BIN)/python benchmarks/import_pos.py
	$(BIN)/python benchmarks/availability.py

clean: ## remove the demo data and the virtual environment
	rm -rf tsunagu-data demo-data $(VENV)
