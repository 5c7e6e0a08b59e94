# Two commands: `make demo` (set up, run the main job) and `make test` (set up, run every test layer).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup constraints demo test lint bench bench-dispatch bench-storage bench-serving bench-road bench-driver bench-split clean

setup: $(STAMP)

# constraints.txt pins the exact set CI runs; pyproject.toml holds the ranges users get
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Refresh constraints.txt: resolve pyproject.toml's ranges afresh (the newest releases) in a scratch venv and
# freeze it. Then `make clean test`, and commit constraints.txt with what the new versions needed.
constraints: SCRATCH := $(or $(TMPDIR),/tmp)/framequeue-constraints-venv
constraints:
	rm -rf $(SCRATCH)
	$(PYTHON) -m venv $(SCRATCH)
	$(SCRATCH)/bin/python -m pip install --quiet --upgrade pip
	$(SCRATCH)/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# The exact set \`make setup\` and CI install (pip install -c constraints.txt -e '.[dev]'), frozen on"; \
	  echo "# Python $$($(SCRATCH)/bin/python -c 'import platform; print(platform.python_version())')" \
	    "by \`make constraints\` (which re-resolves pyproject.toml's ranges). Users get the ranges, not this."; \
	  $(SCRATCH)/bin/python -m pip freeze --exclude-editable; } > $(SCRATCH)/constraints.txt
	mv $(SCRATCH)/constraints.txt constraints.txt
	rm -rf $(SCRATCH)

demo: setup
	$(BIN)/framequeue demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m tools.import_graph --check

# the dashboard's browser layer (tests/browser) drives Debian's Chromium through its chromedriver
test: lint
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		echo "chromium could not be installed: tests/browser will skip (and fail under CI=true)"
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

# object store: framequeue's S3 store vs boto3's transfer manager on moto, 1 GiB up and down (~9 min)
bench-storage: setup
	$(BIN)/python -m bench.storage $(BENCH_ARGS)

# serve-models at 1-16 callers, dynamic batching on/off, and the dashcam job in-process vs remote (~7 min)
bench-serving: setup
	$(BIN)/python -m bench.serving $(BENCH_ARGS)

# the road pipeline: fps per clip, stage CPU and the 2-core ceiling, vs naive, memory, videos per machine (~25 min; BENCH_ARGS=--quick ~4 min)
bench-road: setup
	$(BIN)/python -m bench.road $(BENCH_ARGS)

# the driver pipeline: fps per clip, stage CPU (FaceMesh per face) and the 2-core ceiling, vs naive, memory (~15 min; BENCH_ARGS=--quick ~3 min)
bench-driver: setup
	$(BIN)/python -m bench.driver $(BENCH_ARGS)

# issue 17: a 30-min 720p video unsplit on 1 pinned worker vs split on 2 (one core each), split/stitch overhead,
# and the predicted scaling to 8-128 workers (52 min measured on 2 cores; BENCH_ARGS="--minutes 6" ~11 min)
bench-split: setup
	$(BIN)/python -m bench.split.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .framequeue framequeue-demo
