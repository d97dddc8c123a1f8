# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint protolint proto-baseline protos clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fareway serve

lint: $(STAMP) protolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck_tree.py
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=protos --grpc_python_out=protos \
		--pyi_out=protos protos/fareway/v1/*.proto

# buf, installed from npm (tools/buf/package-lock.json) like .venv from PyPI: `buf lint` with the
# STANDARD rules and `buf breaking` against protos/baseline.binpb, the v1 API as published
# (protos/buf.yaml says what is excepted and why). Without npm it is skipped, loudly, unless
# FAREWAY_REQUIRE_NODE=1 (CI), which makes it fail instead.
BUF := tools/buf/node_modules/.bin/buf
BUF_STAMP := tools/buf/node_modules/.installed

$(BUF_STAMP): tools/buf/package.json tools/buf/package-lock.json
	cd tools/buf && npm ci --no-audit --no-fund --loglevel=error
	touch $(BUF_STAMP)

protolint:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory buf-checks; \
	elif [ "$$FAREWAY_REQUIRE_NODE" = 1 ]; then echo "protolint: npm not found"; exit 1; \
	else echo "protolint: SKIPPED, npm not found (install Node.js 18+ and npm to run buf)"; fi

.PHONY: buf-checks
buf-checks: $(BUF_STAMP)
	cd protos && ../$(BUF) lint
	cd protos && ../$(BUF) breaking --against baseline.binpb

# Remake the baseline only when a new version of the API is published (its changes reviewed as
# additive), never to make `buf breaking` pass.
proto-baseline: $(BUF_STAMP)
	cd protos && ../$(BUF) build --exclude-source-info -o baseline.binpb

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache \
		tools/buf/node_modules examples/node/node_modules
