# The two commands of the README: `make demo` (main job) and `make test` (all tests).
# Both build .venv from requirements.txt first (a no-op when it is up to date).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: env demo test lint bench clean

env:
	@scripts/setup_env.sh

demo: env
	@scripts/demo.sh

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

bench: env
	$(BIN)/python benchmarks/postprocess.py

clean:
	rm -rf output build install log
