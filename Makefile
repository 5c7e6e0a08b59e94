# Two commands: `make demo` (set up, run the main job) and `make test` (set up, run every test layer).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-dispatch clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/framequeue demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# `make bench` runs everything (~20 min, rewrites BENCHMARKS.md); `make bench BENCH_ARGS=--quick` checks in ~5 min
bench: setup
	command -v ffmpeg >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg) \
		|| echo "ffmpeg could not be installed: (c) will use PyAV decode-only"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# dispatch overhead with a no-op pipeline: framequeue on every backend vs Celery and Dramatiq (~5 min)
bench-dispatch: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.dispatch.run

clean:
	rm -rf $(VENV) .framequeue framequeue-demo
