# sftlens: two set-up commands (`make demo`, `make test`) that work on a fresh clone.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test check lint fmt test-fast test-all test-one-thread install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first: an unpinned torch pulled in by a dependency would fetch a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sftlens quickstart

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not gpu and not integration"

# make check: the gate (ruff + fast tests), same as pre-commit.
check: lint test-fast

# make test: lint + every default test (unit and integration; slow/gpu excluded).
test: lint
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# The tests whose fixtures train or build a model, with one torch thread (another floating-point
# path than the default two); .ci/run runs it after make test. All variants:
# benchmarks/fixture_variants.py.
FIXTURE_TESTS := tests/test_refusal_model.py tests/test_interrupt.py tests/test_rollout_engine.py
test-one-thread: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(FIXTURE_TESTS)

clean:
	rm -rf $(VENV) build *.egg-info
