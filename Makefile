# policyhub — every target creates the virtualenv it needs on a fresh clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install up demo test test-fast lint bench synth layers reliability api-docs clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,infra]'
	touch $(STAMP)

# openapi-python-client caps typer below the CLI's: its own venv, for test_generated_client.py
# only (make up and make demo do not need it).
CODEGEN_STAMP := $(VENV)/codegen/.installed-stamp
$(CODEGEN_STAMP): tests/e2e/codegen-requirements.txt | $(STAMP)
	python3 -m venv $(VENV)/codegen
	$(VENV)/codegen/bin/pip install -q -r tests/e2e/codegen-requirements.txt
	touch $(CODEGEN_STAMP)

install: $(STAMP)

up: install
	$(PY) -m infra.local up

demo: install
	$(PY) -m infra.local demo

api-docs: install  # docs/api.md from the OpenAPI document (tests/unit/test_api_reference.py)
	$(PY) -m infra.api_reference

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy layers/shared/python functions infra tests bench

test: install lint $(CODEGEN_STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

test-fast: install
	$(PY) -m pytest -x -q -m "not e2e"

bench: install
	$(PY) -m bench

reliability: install
	$(PY) -m bench.reliability $(if $(SOAK),--soak,)

synth: install layers
	npx --yes aws-cdk@2 synth --quiet --output cdk.out

layers: install
	bash infra/scripts/build_layers.sh

clean:
	rm -rf $(VENV) cdk.out build .local .mypy_cache .ruff_cache .pytest_cache
