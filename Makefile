# cellprop developer commands. Every target does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned in the same pip command: a looser request would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
export QT_QPA_PLATFORM ?= offscreen

.PHONY: help demo test lint bench bench-window models validate screenshot installer clean sysdeps

help:
	@echo "make demo       segment the bundled samples with the shipped model -> demo-output/"
	@echo "make test       set up (venv, pip, system libraries) and run the whole test suite"
	@echo "make bench      speed/memory benchmark of the engine (prints figures)"
	@echo "make bench-window what the window adds to a batch of 1,000 small images (prints figures)"
	@echo "make models     retrain the shipped models from ../shared/data"
	@echo "make validate   accuracy report -> docs/validation.md"
	@echo "make screenshot real window under Xvfb -> docs/*.png"
	@echo "make installer  one-folder desktop bundle -> installer/dist/cellprop"

$(VENV)/.base: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(BIN)/python -m pip install -q -e ".[train,test,installer]" "$(TORCH)"
	touch $@

sysdeps:
	@./tools/system-deps.sh

demo: $(VENV)/.base
	$(BIN)/cellprop segment resources/samples --model phase --out demo-output --overwrite

test: sysdeps $(VENV)/.dev
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/python tools/lint_imports.py \
	  && $(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python tools/bench.py

bench-window: $(VENV)/.dev
	$(BIN)/python tools/bench_window.py

models: $(VENV)/.dev
	$(BIN)/python -m cellprop.training.models ../shared/data

validate: $(VENV)/.dev
	$(BIN)/python tools/validate.py ../shared/data --out docs

screenshot: sysdeps $(VENV)/.dev
	QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python tools/screenshots.py docs

installer: sysdeps $(VENV)/.dev
	$(BIN)/python installer/build.py

clean:
	rm -rf build dist installer/build installer/dist demo-output bench-output .pytest_cache
