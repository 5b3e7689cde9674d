# Two commands for a newcomer:  `make repro` (set up + quick reproduction), `make test` (set up + tests).
# A virtual environment .venv is created unless one is already active.
ifdef VIRTUAL_ENV
PY := python
BIN :=
else
PY := .venv/bin/python
BIN := .venv/bin/
endif
STAMP := $(dir $(PY)).rfattn-installed

.PHONY: setup repro test test-all test-install test-main-job test-demos lint bench report docs docs-serve clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml tools/install-torch.sh
	@if [ -z "$$VIRTUAL_ENV" ] && [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
	$(PY) -m pip install --quiet --upgrade pip
	bash tools/install-torch.sh $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

repro: setup          ## quick reproduction of every study: figures/, figures/REPORT.md
	$(BIN)rfattn-repro --quick

test: setup           ## lint (ruff) and the default test suite (excludes `slow` and `gpu`)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: setup           ## ruff (line length 100; pyproject.toml [tool.ruff])
	$(PY) -m ruff check .

test-all: setup       ## every CPU test, the slow ones included
	$(PY) -m pytest -q -m "not gpu"

bench: setup          ## speed and memory comparisons, written to benchmarks/results/
	$(PY) benchmarks/bench_rfa.py
	$(PY) benchmarks/bench_ntk.py
	$(PY) benchmarks/bench_svm.py
	$(PY) benchmarks/bench_theory.py
	$(PY) benchmarks/bench_snnk.py
	$(PY) benchmarks/bench_attention_kernel.py
	$(PY) benchmarks/bench_attention_ntk.py

report: setup         ## rebuild figures/REPORT.md and figures/claims.json from stored claims
	$(BIN)rfattn-report figures

test-install: setup   ## the wheel installed outside the repository; the lowest dependency versions
	$(PY) -m pytest -q -m slow tests/experiment/test_wheel.py tests/experiment/test_minimum_versions.py

test-main-job: setup  ## every study's main job at a tiny size, end to end (slow; CI runs it)
	$(PY) -m pytest -q -m slow tests/experiment/test_configs.py -k tiny_size

test-demos: setup     ## every demo run as a script, its assertions included (slow; CI runs it)
	$(PY) -m pytest -q -m slow tests/demos

DOCS_STAMP := $(dir $(PY)).rfattn-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	@touch $@

# the demos run in a Jupyter kernel: figures are captured by the inline backend
DOCS_ENV := MPLBACKEND=module://matplotlib_inline.backend_inline NO_MKDOCS_2_WARNING=1

docs: $(DOCS_STAMP)   ## the documentation site into site/ (warnings are errors; demos executed)
	$(DOCS_ENV) $(BIN)mkdocs build --strict
	$(PY) tools/check_site.py site

docs-serve: $(DOCS_STAMP)  ## serve the site at http://127.0.0.1:8000, rebuilt on change
	$(DOCS_ENV) $(BIN)mkdocs serve

clean-outputs:
	rm -rf outputs multirun
