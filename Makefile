# Two commands do everything: `make demo` and `make test`.
# Each creates .venv if needed and installs the pinned dependencies itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .threadline-demo

.PHONY: demo test lint install clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first, so nothing below can pull a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/threadline demo --data-dir $(DEMO_DIR) datasets/sample/musique_sample.jsonl

lint: $(STAMP)
	$(BIN)/ruff check graph extractors agents engine datasets tests
	$(BIN)/ruff format --check graph extractors agents engine datasets tests
	$(BIN)/mypy graph extractors agents engine
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
