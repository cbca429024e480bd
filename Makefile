# Two entry points for a fresh clone (only Python >= 3.11 and make needed):
#   make lab   - JupyterLab on notebooks/
#   make test  - lint, mypy --strict on the cores, and the whole test suite, notebooks included
#   (mypy reads its scope from [tool.mypy] in pyproject.toml: airlab.aliyun, airlab.at,
#   airlab.cloud, airlab.fleet)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/airlab lab $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/ruff check airlab tests benchmarks
	$(BIN)/mypy
	AIRLAB_SIM_STRICT=1 $(BIN)/python -m pytest tests notebooks --nbval --nbval-cell-timeout=120 --nbval-sanitize-with tests/nbval_sanitize.cfg

lint: $(STAMP)
	$(BIN)/ruff check airlab tests benchmarks
	$(BIN)/ruff format --check airlab tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_capture_import.py
	$(BIN)/python benchmarks/bench_cloud.py
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/attack_cloud.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
