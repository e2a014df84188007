# EmoChat backend: bootstrap, local stack, tests. Every target bootstraps what it needs, idempotently:
# a stamp inside each environment, keyed on the content of the files that define it, makes a second
# run a no-op. See `make help`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FN_VENV := functions/venv
APT_PACKAGES := espeak-ng ffmpeg
APT_TOOLS := espeak-ng ffmpeg

sha = $(shell cat $(1) | sha256sum | cut -c1-16)
DEV_REQS := requirements-dev.txt functions/requirements.txt stress_model/requirements.txt stress_model/pyproject.toml
VENV_STAMP := $(VENV)/.stamp-$(call sha,$(DEV_REQS))
FN_VENV_STAMP := $(FN_VENV)/.stamp-$(call sha,functions/requirements.txt)
NODE_STAMP := node_modules/.stamp-$(call sha,package.json package-lock.json)

UNIT_TESTS := $(wildcard tests/unit tests/model tests/local)
STACK_TESTS := $(wildcard tests/integration tests/e2e)

# `make exec CMD="..."`: CMD reaches the recipe through the environment (no quoting trouble).
export CMD

# Bootstrap steps hold a lock (several make runs may start at once on a shared machine) and re-check
# their stamp once they have it: the second runner finds the work done.
LOCKED = mkdir -p .cache && exec 9>.cache/bootstrap.lock && flock 9 && [ -f $@ ] ||

.PHONY: help bootstrap apt node venv functions-venv jars samples seed demo emulators exec test \
        test-unit test-stack lint format doctor bench model-report

help:
	@echo "make bootstrap        install everything (apt, npm ci, .venv, functions/venv, emulator jars, storage rules runtime)"
	@echo "make demo             start the stack, send two voice messages as the app (calm, then stressed: alert path), print, stop"
	@echo "make emulators        the stack in the foreground, with seed data, for the Expo app (Ctrl-C stops)"
	@echo "make exec CMD='...'   run CMD with the stack up and the emulator variables set"
	@echo "make test             unit/model/local tests, then integration/e2e tests against the stack"
	@echo "make lint             ruff"
	@echo "make bench            benchmarks in bench/ (printed, not asserted)"
	@echo "make doctor           node, Java and the emulator jars: which Storage rules runtime runs"
	@echo "make seed             rebuild emulator-data/export from emulator-data/seed.json"
	@echo "make samples          regenerate samples/*.m4a (espeak-ng + ffmpeg)"
	@echo "make model-report     leave-one-subject-out on StressID's public tables -> stress_model/reports/"

# ------------------------------------------------------------------------------------------ bootstrap

bootstrap: apt node venv functions-venv jars

apt:
	@mkdir -p .cache && exec 9>.cache/bootstrap.lock && flock 9; \
	missing=""; for tool in $(APT_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $(APT_PACKAGES) (missing:$$missing)"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

node: $(NODE_STAMP)
# --ignore-scripts: firebase-tools needs none of its dependencies' install scripts (the only native
# one, re2, is optional and only for the Hosting emulator; building it takes a minute).
$(NODE_STAMP): package.json package-lock.json
	@$(LOCKED) { echo "npm ci"; npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; }

# The model package is installed editable in "compat" mode, which puts its folder on sys.path: the
# outer stress_model/ directory then cannot shadow it as a namespace package from the repo root.
venv: $(VENV_STAMP)
$(VENV_STAMP): $(DEV_REQS)
	@$(LOCKED) { [ -x $(PY) ] || $(PYTHON) -m venv $(VENV); \
	  echo "pip install -r requirements-dev.txt"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
	  && $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	       --config-settings editable_mode=compat -e ./stress_model \
	  && rm -f $(VENV)/.stamp-* && touch $@; }

functions-venv: $(FN_VENV_STAMP)
$(FN_VENV_STAMP): functions/requirements.txt
	@$(LOCKED) { [ -x $(FN_VENV)/bin/python3.11 ] || $(PYTHON) -m venv $(FN_VENV); \
	  echo "pip install -r functions/requirements.txt (functions/venv)"; \
	  $(FN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r functions/requirements.txt \
	  && rm -f $(FN_VENV)/.stamp-* && touch $@; }

# The Firestore emulator wrapper jar and the Storage rules runtime on the Debian jar's rules engine
# (javac; only where firebase-tools has no cache). local_stack/java.py detects the Debian package
# google-cloud-cli-firestore-emulator (on the machine image) and says what is missing.
jars: node venv
	@$(PY) -m local_stack.java >/dev/null

# ---------------------------------------------------------------------------------------- local stack

demo: bootstrap
	$(PY) -m local_stack demo

emulators: bootstrap
	$(PY) -m local_stack emulators

exec: bootstrap
	@[ -n "$${CMD:-}" ] || { echo 'usage: make exec CMD="pytest tests/e2e"' >&2; exit 2; }
	$(PY) -m local_stack exec -- bash -c "$$CMD"

doctor: node venv
	node --version
	$(PY) -m local_stack.java

seed: bootstrap
	$(PY) -m local_stack seed-export

samples: apt venv
	@mkdir -p samples
	espeak-ng -v en -s 160 -p 50 -a 100 -w samples/.voice-en.wav \
	  "Hi Joon, it's Mina. The meeting ran a little long, but I am on my way now. See you at seven."
	ffmpeg -hide_banner -loglevel error -y -i samples/.voice-en.wav -ac 1 -ar 16000 -c:a aac -b:a 32k \
	  -map_metadata -1 -fflags +bitexact -flags:a +bitexact -movflags +faststart samples/voice-en.m4a
	@rm -f samples/.voice-en.wav
	# The alert sample: of 54 espeak-ng renderings of this sentence (voices en, en-us, en-gb-x-rp,
	# en+f3/f4, en-us+f2, en+m3; speeds 110-220; pitch 30-90) the served model scores this one highest
	# (P 0.68): chosen because the model reads it high, not because it sounds stressed to a person.
	espeak-ng -v en+f4 -s 110 -p 90 -a 100 -w samples/.voice-stressed.wav \
	  "I can't do this anymore. The deadline is tonight and nothing works, everything keeps breaking."
	ffmpeg -hide_banner -loglevel error -y -i samples/.voice-stressed.wav -ac 1 -ar 16000 -c:a aac -b:a 32k \
	  -map_metadata -1 -fflags +bitexact -flags:a +bitexact -movflags +faststart samples/voice-stressed.m4a
	@rm -f samples/.voice-stressed.wav
	@ls -l samples/

# ---------------------------------------------------------------------------------------------- tests

# One pytest run per folder: the folders' conftest modules share a name, so one run over several
# folders cannot import them all. Exit code 5 ("no tests collected") counts as success, so a folder
# that is still empty does not fail CI. Every folder runs; the first failure's code is the result.
pytest_dirs = rc=0; for d in $(1); do echo "== pytest $$d"; $(PY) -m pytest $$d || { r=$$?; \
  if [ $$r -eq 5 ]; then echo "pytest: no tests collected in $$d"; elif [ $$rc -eq 0 ]; then rc=$$r; fi; }; \
  done; exit $$rc

# Figures of the stress model on real data (StressID's public feature tables), with plots.
model-report: venv
	$(PY) -m stress_model report stress_model/reports

test: lint test-unit test-stack

# node: tests/local compares our Storage rules runtime with firebase-tools' own where it is cached.
test-unit: venv node
	@$(call pytest_dirs,$(UNIT_TESTS))

test-stack: bootstrap
	EMOCHAT_REQUIRE_STACK=1 $(PY) -m local_stack exec -- bash -c '$(call pytest_dirs,$(STACK_TESTS))'

# bench_import.py measures the deployed codebase: it runs in functions/venv; the others in .venv.
bench: bootstrap
	$(FN_VENV)/bin/python bench/bench_import.py
	@for f in $(filter-out bench/bench_import.py,$(wildcard bench/bench_*.py)); do echo "== $$f"; $(PY) $$f; done

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .
