# Set-up and entry points. Every target creates or reuses the virtualenv in .venv.
# TORCH_SPEC: on our machines `torch==2.13.0` is the CPU wheel on disk; elsewhere pass your own
# (e.g. `make test TORCH_SPEC=torch`), or install torch into .venv first and it is kept.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_INDEX ?= demo-index

.PHONY: setup demo test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,bench,ray,serve]"
# tests/test_search_page.py drives Debian's chromium (through playwright); playwright's own
# browser download is not available on our machines. Without apt, install chromium yourself.
	command -v chromium >/dev/null || apt-get install -y -q chromium \
		|| (apt-get update -q && apt-get install -y -q chromium) \
		|| sudo -n sh -c 'apt-get update -q && apt-get install -y -q chromium' \
		|| echo "warning: chromium is not installed; tests/test_search_page.py needs it" >&2
	touch $@

# Main job: build an index over the bundled sample with the default model and variant, then query it.
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/hashindex build --sample --out $(DEMO_INDEX) --overwrite
	HF_HUB_OFFLINE=1 $(BIN)/hashindex query $(DEMO_INDEX) "how do I read a compressed file" -k 5

test: $(STAMP)
	$(BIN)/ruff check .
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/hashindex bench --dataset bbc-news --out benchmarks/results/bbc-news
