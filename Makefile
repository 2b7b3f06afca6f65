# The two commands a newcomer needs: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install prepare chromium clean

run: prepare
	$(BIN)/llmproxy serve $(ARGS)

test: prepare chromium lint
	$(BIN)/pytest --cov=llmproxy --cov-report=term:skip-covered $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check llmproxy tests
	$(BIN)/ruff format --check llmproxy tests
	$(BIN)/mypy
	$(BIN)/lint-imports

install: prepare

# The embedding model exported to ONNX under .llmproxy/onnx (once: a no-op when it is already there).
prepare: $(STAMP)
	$(BIN)/llmproxy models prepare

# The browser the web console's tests drive: Debian's Chromium (Playwright's own download is never used), installed
# with apt-get when missing (through sudo unless root). Without it those tests fail, they do not skip.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# torch first, pinned: the CPU wheel. Unpinned, sentence-transformers would pull several GB of CUDA packages.
# The rest at the versions in constraints.txt (the ranges in pyproject.toml admit new releases, untested here).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .llmproxy .pytest_cache .mypy_cache .ruff_cache .coverage
