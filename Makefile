# ffka: the two commands a user needs are `make reproduce` and `make test` (see README.md).
# Both create .venv and install what they need; nothing else must be installed beforehand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU default: the torch 2.13.0 CPU wheel. A GPU user sets TORCH_SPEC= (empty) to keep the torch
# already in $(VENV), or e.g. TORCH_SPEC='torch==2.13.0 --index-url <their CUDA index>'.
TORCH_SPEC ?= torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STAMP := $(VENV)/.ffka-installed
QUICK ?=
# PROFILE=long: the long profile (hours on this CPU); PROFILE=quick is QUICK=1.
PROFILE ?=

.PHONY: install reproduce test sync-check nbtest nbtest-noshared pytest readme clean-runs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python settings.ini setup.py
	@if [ -n "$(TORCH_SPEC)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "installing $(TORCH_SPEC) first (CPU wheel)"; $(BIN)/python -m pip install -q $(TORCH_SPEC); fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: base checkpoints, every experiment on the embedded default, figures/ and results.
reproduce: $(STAMP)
	$(OFFLINE) $(BIN)/ffka reproduce $(if $(QUICK),--quick,$(if $(PROFILE),--$(PROFILE),))

## The whole test suite: notebook/package sync, notebook tests (with the reference data and, as a user's fresh
## clone has it, without), pytest (its summary line last).
test: $(STAMP)
	$(MAKE) --no-print-directory sync-check
	$(MAKE) --no-print-directory nbtest
	$(MAKE) --no-print-directory nbtest-noshared
	$(MAKE) --no-print-directory pytest

sync-check:
	@$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python -c "from ffka.testing import write_readme; write_readme()"
	@if [ -n "$$(git status --porcelain -- ffka nbs README.md)" ]; then \
	  echo "nbdev_export/nbdev_clean changed tracked files: notebooks and ffka/ have drifted"; \
	  git status --porcelain -- ffka nbs README.md; git --no-pager diff --stat; exit 1; fi
	@echo "sync-check: notebooks, ffka/ and README.md agree"

nbtest:
	$(OFFLINE) $(BIN)/nbdev_test --n_workers 2

# The notebooks once more in a copy of the checkout with no ../shared beside it: what a user's clone sees.
nbtest-noshared:
	@d=$$(mktemp -d) && git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C $$d && \
	  echo "nbtest without ../shared in $$d" && cd $$d && FFKA_NO_SHARED=1 $(OFFLINE) $(CURDIR)/$(BIN)/nbdev_test --n_workers 2; \
	  rc=$$?; rm -rf $$d; exit $$rc

pytest:
	$(OFFLINE) $(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

readme: $(STAMP)
	$(BIN)/python -c "from ffka.testing import write_readme; write_readme()"

clean-runs:
	rm -rf nbs/experiments/_runs
